#!/usr/bin/env node
// Runs a TypeScript entry point in Node through Vite's SSR loader, so `?raw` WGSL imports and TypeScript work
// with no extra packages: `node src/cli/run.mjs <file.ts> [args...]` calls the module's `main(args)`, whose
// return value (a number) is the exit code.
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'vite';

const root = resolve(fileURLToPath(import.meta.url), '../../..');

/** Loads `entry` (a path) through Vite, runs its `main(args)` and exits with its code. */
export async function runTs(entry, args) {
  // Dawn finds the GPU through Vulkan; with no GPU use SwiftShader (from Debian's chromium package).
  process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
  const server = await createServer({
    root,
    configFile: false,
    logLevel: 'warn',
    appType: 'custom',
    server: { middlewareMode: true, hmr: false, ws: false, watch: null },
    optimizeDeps: { noDiscovery: true },
  });
  let code = 1;
  try {
    const mod = await server.ssrLoadModule(resolve(entry));
    if (typeof mod.main !== 'function') throw new Error(`${entry} exports no main(args) function`);
    code = (await mod.main(args)) ?? 0;
  } catch (e) {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  } finally {
    await server.close();
  }
  // Dawn can keep the event loop alive after the work is done; the result is all that matters here.
  process.exit(code);
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [entry, ...args] = process.argv.slice(2);
  if (!entry) {
    console.error('usage: node src/cli/run.mjs <file.ts> [args...]');
    process.exit(2);
  }
  await runTs(entry, args);
}
