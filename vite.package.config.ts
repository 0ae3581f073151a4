/**
 * `npm run build:package`: the npm package's ES modules in dist/ (one per `exports` entry, shared chunks
 * between them, WGSL inlined as strings). Dependencies stay imports for the installing app to resolve.
 */
import { resolve } from 'node:path';
import { defineConfig, type Plugin } from 'vite';
import pkg from './package.json' with { type: 'json' };

const src = (file: string) => resolve(import.meta.dirname, 'src', file);
const external = [...Object.keys(pkg.dependencies), ...Object.keys(pkg.optionalDependencies)];

/** Writes the engine worker's URL as a literal in the output (see src/worker/spawn-package.ts). */
function literalWorkerUrl(): Plugin {
  const written = 'new URL(ENGINE_WORKER, import.meta.url)';
  return {
    name: 'literal-worker-url',
    renderChunk(code, chunk) {
      if (!code.includes('ENGINE_WORKER')) return null;
      if (!code.includes(written)) throw new Error(`${chunk.fileName}: the engine worker's URL is no longer written as ${written}`);
      return code.replace(written, 'new URL("./engine-worker.js", import.meta.url)');
    },
  };
}

export default defineConfig({
  plugins: [literalWorkerUrl()],
  publicDir: false,
  // Asset and worker URLs relative to the importing module, wherever the installing app puts the files.
  base: './',
  resolve: {
    alias: [
      { find: /^(\.\.\/worker|\.)\/spawn$/, replacement: src('worker/spawn-package.ts') },
      { find: /^\.\/wasm-url$/, replacement: src('wasm/wasm-url-package.ts') },
    ],
  },
  build: {
    target: 'es2022',
    outDir: 'dist-npm',
    emptyOutDir: true,
    minify: false,
    lib: {
      entry: {
        index: src('index.ts'),
        node: src('node/index.ts'),
        worker: src('worker/index.ts'),
        'engine-worker': src('worker/engine-worker.ts'),
        embed: src('embed/package.ts'),
        cli: src('cli/bin.ts'),
      },
      formats: ['es'],
    },
    rolldownOptions: {
      external: (id) => id.startsWith('node:') || external.some((dep) => id === dep || id.startsWith(`${dep}/`)),
    },
  },
});
