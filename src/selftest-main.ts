import { mountSelftest } from './ui/selftest';

void mountSelftest(document.getElementById('app') ?? document.body);
