import { resolve } from 'node:path';
import type { BuildOptions } from 'vite';
import { defineConfig } from 'vitest/config';
import { serveModels } from './src/dev/serve-models.ts';
import { bundleEmbedLibrary } from './src/embed/build-plugin.ts';
import { precacheServiceWorker } from './src/worker/precache-plugin.ts';
import { wllamaWasmBesideLibrary } from './src/wasm/build-plugin.ts';

/**
 * Node runs WebGPU through Dawn over a Vulkan driver. With no GPU we use software ones:
 * SwiftShader (ships with Debian's chromium; no shader-f16) and Mesa's lavapipe (from bookworm-backports;
 * has shader-f16, so the native f16 path is tested). Override with the same variable to use a real GPU.
 */
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const LAVAPIPE_ICD = '/usr/share/vulkan/icd.d/lvp_icd.json';


/** `vite build --mode lib`: the script-tag build, one self-contained file per format (see src/embed/). */
const LIB_BUILD: BuildOptions = {
  target: 'es2022',
  outDir: 'dist-lib',
  copyPublicDir: false,
  lib: {
    entry: resolve(import.meta.dirname, 'src/embed/index.ts'),
    name: 'WebGPULLM',
    formats: ['es', 'iife'],
    fileName: (format) => (format === 'iife' ? 'webgpu-llm.iife.js' : 'webgpu-llm.js'),
  },
  // The IIFE build finds its own URL through document.currentScript; import.meta.url serves the ESM build only.
  // One file per format: the CPU backend's wllama glue is inlined rather than left as a chunk beside it.
  rolldownOptions: { checks: { emptyImportMeta: false }, output: { codeSplitting: false } },
};

export default defineConfig(({ mode }) => ({
  plugins: [
    serveModels(),
    // The app build takes the library from dist-lib/ and lists its own output for the service worker.
    // wllama's WebAssembly (8 MiB, for the CPU backend only) is fetched when that backend loads, not precached.
    ...(mode === 'lib'
      ? [wllamaWasmBesideLibrary()]
      : [bundleEmbedLibrary('dist-lib'), precacheServiceWorker({ exclude: /^(webgpu-llm(\.iife)?\.js|embed-example\.[a-z]+|(assets\/)?wllama[-\w]*\.wasm)$/ })]),
  ],
  server: { host: '127.0.0.1' },
  // Cross-origin isolation (SharedArrayBuffer), so the CPU backend may run llama.cpp on several threads.
  preview: { headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } },
  build: mode === 'lib' ? LIB_BUILD : { target: 'es2022' },
  test: {
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'swiftshader',
          include: ['test/**/*.test.ts', 'src/kernels/**/*.test.ts'],
          // The engine's logic does not depend on the driver; lavapipe runs it ~25x faster.
          exclude: ['test/browser/**', 'test/engine/**'],
          env: { VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? SWIFTSHADER_ICD, WEBGPU_LLM_ADAPTER: 'swiftshader' },
        },
      },
      {
        extends: true,
        test: {
          name: 'lavapipe',
          include: ['src/kernels/**/*.test.ts', 'test/model/**/*-gpu.test.ts', 'test/engine/**/*.test.ts'],
          env: { VK_ICD_FILENAMES: LAVAPIPE_ICD, WEBGPU_LLM_ADAPTER: 'lavapipe' },
        },
      },
      {
        extends: true,
        test: { name: 'chromium', include: ['test/browser/**/*.test.ts'] },
      },
    ],
  },
}));
