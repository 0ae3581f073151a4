#!/usr/bin/env node
// The installed package's `webgpu-llm` command. Dawn can keep the event loop alive after the work is done,
// so the exit code from main() ends the process.
import { main } from './main';

process.exit(await main(process.argv.slice(2)));
