/**
 * The self-test page in headless Chromium (WebGPU on SwiftShader, so no shader-f16): every kernel case
 * must pass in a real browser, through the Vite dev server (the page is /?selftest).
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SelftestState } from '../../src/ui/selftest';
import { ROOT, startBrowser, type BrowserHarness } from '../../src/dev/browser';

/** Matmul alone has 12 cases that run without shader-f16; the suite only grows. */
const MIN_RESULTS = 27;
const SUITE_TIMEOUT_MS = 240_000;

let harness: BrowserHarness;
beforeAll(async () => {
  harness = await startBrowser();
});
afterAll(() => harness?.close());

/** Opens the page and waits until the suite is done; the page stays open for screenshots. */
async function openSelftest(prepare?: (page: Page) => Promise<unknown>): Promise<{ page: Page; state: SelftestState; consoleErrors: string[] }> {
  const { page, consoleErrors } = await harness.newPage();
  await prepare?.(page);
  await page.goto(harness.url('/?selftest'));
  const finished = await page
    .waitForFunction(() => window.__selftest?.done === true, undefined, { timeout: SUITE_TIMEOUT_MS })
    .then(() => true, () => false);
  const state = (await page.evaluate(() => window.__selftest)) as SelftestState;
  if (!finished) {
    const last = state?.results.at(-1)?.name ?? 'none';
    throw new Error(`the self-test did not finish in ${SUITE_TIMEOUT_MS / 1000} s: ${state?.results.length ?? 0} cases done, the last finished: ${last}`);
  }
  return { page, state, consoleErrors };
}

it('runs every kernel self-test case in headless Chromium and all pass', { timeout: SUITE_TIMEOUT_MS + 30_000 }, async () => {
  const { page, state, consoleErrors } = await openSelftest();
  mkdirSync(resolve(ROOT, 'test-output'), { recursive: true });
  await page.screenshot({ path: resolve(ROOT, 'test-output/selftest.png'), fullPage: true });
  await page.close();

  expect(state.error, `the page could not run the suite (console: ${consoleErrors.join(' | ')})`).toBeUndefined();
  expect(state.adapter?.name, 'the page shows no adapter').toBeTruthy();
  const failures = state.results.filter((r) => !r.passed).map((r) => `${r.name}: ${r.message}`);
  expect(failures, `failed on ${state.adapter?.name}:\n${failures.join('\n')}`).toEqual([]);
  expect(state.results.length, `only ${state.results.length} cases ran`).toBeGreaterThanOrEqual(MIN_RESULTS);
  expect(consoleErrors).toEqual([]);
});

it('shows WebGPUUnavailableError where the browser has no WebGPU', async () => {
  const { page, state } = await openSelftest((p) =>
    p.addInitScript(() => Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined })),
  );
  expect(state.error).toMatch(/^WebGPUUnavailableError: WebGPU is not available: navigator\.gpu is missing/);
  expect(state.results).toEqual([]);
  await expect(page.locator('.error').textContent()).resolves.toBe(state.error);
  await page.close();
});
