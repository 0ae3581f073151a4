/** The engine's module worker: the page talks to it through createWorkerEngine (client.ts). */
import { serveEngine } from './serve';

serveEngine(self);
