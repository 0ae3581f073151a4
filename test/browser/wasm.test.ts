/**
 * The CPU backend (llama.cpp in WebAssembly through wllama) in headless Chromium: launched without WebGPU, the
 * model and the engine on it reproduce the stories260K greedy golden and the CPU reference's distributions, and
 * the engine's API works unchanged on top; with WebGPU on SwiftShader, auto takes WASM (a software adapter)
 * and backend 'webgpu' still forces the GPU. wllama needs Web Workers, so none of this runs in Node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { greedyGolden } from '../models';
import { startBrowser, type BrowserHarness } from '../../src/dev/browser';
import type { WasmState } from './wasm-page';

async function runPage(harness: BrowserHarness, query: Record<string, string>): Promise<{ state: WasmState; consoleErrors: string[] }> {
  const { page, consoleErrors } = await harness.newPage();
  await page.goto(harness.url(`/test/browser/wasm.html?${new URLSearchParams(query)}`));
  await page.waitForFunction(() => window.__wasm?.done === true, undefined, { timeout: 110_000 });
  const state = (await page.evaluate(() => window.__wasm)) as WasmState;
  await page.close();
  return { state, consoleErrors };
}

describe('Chromium without WebGPU', () => {
  let harness: BrowserHarness;
  beforeAll(async () => {
    harness = await startBrowser([], { webgpu: false });
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

  it('createEngine picks WASM, says why, and the engine API works on it', async () => {
    const golden = greedyGolden();
    const { state, consoleErrors } = await runPage(harness, { mode: 'engine', n: String(golden.new_tokens) });
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
    expect(api.chatContent.length).toBeGreaterThan(0);
    expect(['stop', 'length']).toContain(api.chatFinish);
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
    expect(state.autoWasmReason).toMatch(/software adapter|fallback adapter/);
    expect(state.backend).toMatchObject({ backend: 'webgpu', reason: 'asked for' });
    expect(state.greedy).toEqual(golden.greedy_ids.slice(0, 24));
  });
});
