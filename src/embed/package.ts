/**
 * The package's `./embed` entry: registers <llm-chat>, whose engine runs in the package's module worker
 * (which the app's bundler builds), and exports the same API as the script-tag build.
 */
import { spawnEngineWorker } from '../worker/spawn';
import { setEngineWorkerFactory } from './engine';
import { defineLlmChat } from './llm-chat';

export * from './api';

setEngineWorkerFactory(spawnEngineWorker);
defineLlmChat();
