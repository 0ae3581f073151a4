import { defineConfig } from 'vite';

export default defineConfig({
  build: { target: 'es2022' },
  // The engine worker is an ES module that imports the package's shared chunks.
  worker: { format: 'es' },
  // Vite's dependency pre-bundling would move the package away from its worker file; serve it as it is.
  optimizeDeps: { exclude: ['webgpu-llm-runtime'] },
});
