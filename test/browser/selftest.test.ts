/**
 * The self-test page in headless Chromium (WebGPU on SwiftShader, so no shader-f16): every kernel case
 * must pass in a real browser, through the same Vite dev server `npm start` uses.
 */
import { existsSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SelftestState } from '../../src/ui/selftest';

const ROOT = resolve(import.meta.dirname, '../..');
const CHROMIUM = '/usr/bin/chromium';
/** Matmul alone has 12 cases that run without shader-f16; the suite only grows. */
const MIN_RESULTS = 12;
const SUITE_TIMEOUT_MS = 240_000;
const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

let server: ViteDevServer | undefined;
let browser: Browser | undefined;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`bash .ci/install\` to install Chromium`);
  server = await createServer({
    root: ROOT,
    logLevel: 'warn',
    // Port 0: any free port, so this can run beside `npm start`.
    server: { host: '127.0.0.1', port: 0, strictPort: true, hmr: false, watch: null },
  });
  await server.listen();
  // Playwright makes a fresh temporary profile (--user-data-dir) for each launch.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

/** Opens the page and waits until the suite is done; the page stays open for screenshots. */
async function openSelftest(prepare?: (page: Page) => Promise<unknown>): Promise<{ page: Page; state: SelftestState; consoleErrors: string[] }> {
  const { port } = server!.httpServer!.address() as AddressInfo;
  const page = await browser!.newPage();
  const consoleErrors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(e.message));
  await prepare?.(page);
  await page.goto(`http://127.0.0.1:${port}/`);
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
