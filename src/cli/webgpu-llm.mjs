#!/usr/bin/env node
// The `webgpu-llm` command (package.json "bin"): runs src/cli/main.ts through Vite's loader.
import { fileURLToPath } from 'node:url';
import { runTs } from './run.mjs';

await runTs(fileURLToPath(new URL('./main.ts', import.meta.url)), process.argv.slice(2));
