/**
 * The CPU backend (llama.cpp in WebAssembly through wllama) in headless Chromium: launched without WebGPU, the
 * model and the engine on it reproduce the stories260K greedy golden and the CPU reference's distributions, and
 * the engine's API works unchanged on top; with WebGPU on SwiftShader, auto takes WASM (a software adapter)
 * and backend 'webgpu' still forces the GPU. Under the strict CSP the CPU path needs 'wasm-unsafe-eval' and
 * blob: workers added (wllama makes its workers from blobs); without either it fails with an error saying
 * which, never a hang. wllama needs Web Workers, so none of this runs in Node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { greedyGolden } from '../models';
import type { Plugin } from 'vite';
import { CPU_CSP, startBrowser, STRICT_CSP, type BrowserHarness } from '../../src/dev/browser';
import type { WasmState } from './wasm-page';

async function runPage(harness: BrowserHarness, query: Record<string, string>): Promise<{ state: WasmState; consoleErrors: string[] }> {
  const { page, consoleErrors } = await harness.newPage();
  await page.goto(harness.url(`/test/browser/wasm.html?${new URLSearchParams(query)}`));
  await page.waitForFunction(() => window.__wasm?.done === true, undefined, { timeout: 110_000 });
  const state = (await page.evaluate(() => window.__wasm)) as WasmState;
  await page.close();
  return { state, consoleErrors };
}

const POLICIES: Record<string, string> = {
  strict: STRICT_CSP,
  'wasm-only': STRICT_CSP.replace("script-src 'self'", "script-src 'self' 'wasm-unsafe-eval'"),
  cpu: CPU_CSP,
};

/** Serves the test page under the policy its `csp` query parameter names. */
const pagePolicy: Plugin = {
  name: 'test:wasm-page-csp',
  configureServer(server) {
    server.middlewares.use((req, res, next) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const policy = url.pathname === '/test/browser/wasm.html' && POLICIES[url.searchParams.get('csp') ?? ''];
      if (policy) res.setHeader('Content-Security-Policy', policy);
      next();
    });
  },
};

describe('Chromium without WebGPU', () => {
  let harness: BrowserHarness;
  beforeAll(async () => {
    harness = await startBrowser([pagePolicy], { webgpu: false });
  });
  afterAll(() => harness?.close());

  it('WasmModel gives the greedy golden and the CPU reference’s next-token distribution', async () => {
    const golden = greedyGolden();
    const { state, consoleErrors } = await runPage(harness, { mode: 'model', prompt: golden.prompt_ids.join(','), n: String(golden.new_tokens) });
    expect(state.error, consoleErrors.join(' | ')).toBeUndefined();
    expect(state.greedy).toEqual(golden.greedy_ids);
    // llama.cpp keeps its KV cache in f16: log-probabilities agree to about 1e-2 (measured ≤ 6e-3).
    expect(state.maxLogprobError!.length).toBeGreaterThan(10);
    for (const error of state.maxLogprobError!) expect(error).toBeLessThan(2e-2);
    expect(state.argmaxAgrees!.every(Boolean)).toBe(true);
  });

  it('q8 and q4 weights go to llama.cpp as Q8_0 and Q4_0 and stay close to the f32 reference', async () => {
    // Measured on 24 positions: q8 errs ≤ 0.18 in log-probability, q4 (two blocks per 64-wide row) up to 4.4 on
    // unlikely tokens, ~1.3 on average; the reference's choice is kept at every position by both.
    const bounds = { q8: { max: 0.4, mean: 0.2, agree: 24 }, q4: { max: 8, mean: 2.5, agree: 21 } };
    for (const dtype of ['q8', 'q4'] as const) {
      const { state, consoleErrors } = await runPage(harness, { mode: 'model', dtype, n: '24', positions: '24' });
      expect(state.error, consoleErrors.join(' | ')).toBeUndefined();
      const errors = state.maxLogprobError!;
      expect(errors.length).toBe(24);
      expect(Math.max(...errors), dtype).toBeLessThan(bounds[dtype].max);
      expect(errors.reduce((a, b) => a + b, 0) / errors.length, dtype).toBeLessThan(bounds[dtype].mean);
      expect(state.argmaxAgrees!.filter(Boolean).length, dtype).toBeGreaterThanOrEqual(bounds[dtype].agree);
    }
  });

  it("createEngine picks WASM, says why, and the engine API works on it, under the strict CSP plus 'wasm-unsafe-eval' and blob: workers", async () => {
    const golden = greedyGolden();
    const { state, consoleErrors } = await runPage(harness, { mode: 'engine', n: String(golden.new_tokens), csp: 'cpu' });
    expect(state.error, consoleErrors.join(' | ')).toBeUndefined();
    expect(state.backend?.backend).toBe('wasm');
    expect(state.backend?.reason).toMatch(/navigator\.gpu is missing|requestAdapter/);
    expect(state.greedy).toEqual(golden.greedy_ids);
    const api = state.api!;
    expect(api.cachedTokens).toBeGreaterThan(4);
    expect(api.continuationAgrees).toBe(true);
    expect(api.stopFinish).toBe('stop');
    expect(api.stopText).not.toContain('Lily');
    expect(api.seededTopKRepeats).toBe(true);
    expect(api.seededLogitsRepeats).toBe(true);
    expect(api.abortFinish).toBe('abort');
    expect(api.queuedAgree).toBe(true);
    expect(api.usage).toEqual([1, golden.new_tokens, 1 + golden.new_tokens]);
    expect(api.chatContent.length).toBeGreaterThan(0);
    expect(['stop', 'length']).toContain(api.chatFinish);
  });

  it('under a policy without them, says which is missing (and how to get WebGPU) rather than hang', async () => {
    const strict = await runPage(harness, { mode: 'engine', n: '4', csp: 'strict' });
    expect(strict.state.error).toMatch(/^WebGPUUnavailableError: .*requestAdapter\(\) returned null, and the CPU \(WebAssembly\) path failed: .*'wasm-unsafe-eval'/);
    const wasmOnly = await runPage(harness, { mode: 'engine', n: '4', csp: 'wasm-only' });
    expect(wasmOnly.state.error).toMatch(/workers from blob: URLs are refused here.*worker-src 'self' blob:/);
  });
});

describe('Chromium with WebGPU on SwiftShader', () => {
  let harness: BrowserHarness;
  beforeAll(async () => {
    harness = await startBrowser();
  });
  afterAll(() => harness?.close());

  it("auto takes WASM on the software adapter; backend 'webgpu' forces the GPU", async () => {
    const golden = greedyGolden();
    const { state, consoleErrors } = await runPage(harness, { mode: 'webgpu', n: '24' });
    expect(state.error, consoleErrors.join(' | ')).toBeUndefined();
    expect(state.autoWasmReason).toMatchObject({ reason: expect.stringMatching(/software adapter|fallback adapter/), webgpuUsable: true });
    expect(state.backend).toMatchObject({ backend: 'webgpu', reason: 'asked for' });
    expect(state.greedy).toEqual(golden.greedy_ids.slice(0, 24));
  });
});
