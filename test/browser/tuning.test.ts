/**
 * Tuning results persist where the engine can reach them: tuned once in a page of headless Chromium, they are
 * read back after a reload by the page and by a Web Worker (where the engine runs), which time no candidate.
 * Chromium's adapter here is software, which tunes untimed by default; the test forces timing to see it.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startBrowser, type BrowserHarness } from '../../src/dev/browser';
import type { TuneResult } from './tuning-tune';

let harness: BrowserHarness;
beforeAll(async () => {
  harness = await startBrowser();
});
afterAll(() => harness?.close());

async function ready(page: Page): Promise<void> {
  await page.waitForFunction(() => window.__tuning !== undefined);
}

function run(page: Page, where: 'page' | 'worker'): Promise<TuneResult> {
  return page.evaluate((w) => window.__tuning!.run(w), where);
}

it('a reload tunes nothing: the page and a worker read the stored shapes', async () => {
  const { page, consoleErrors } = await harness.newPage();
  await page.goto(harness.url('/test/browser/tuning.html'));
  await ready(page);
  const first = await run(page, 'page');
  expect(first.timed).toBeGreaterThan(0);
  await page.reload();
  await ready(page);
  const inPage = await run(page, 'page');
  const inWorker = await run(page, 'worker');
  for (const again of [inPage, inWorker]) {
    expect(again.timed).toBe(0);
    expect(again.matvec).toEqual(first.matvec);
    expect(again.tiled).toEqual(first.tiled);
  }
  // The page has no favicon: its 404 is the only error allowed.
  expect(consoleErrors.filter((e) => !/status of 404/.test(e))).toEqual([]);
});
