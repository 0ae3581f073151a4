/** stories260K in headless Chromium: weights fetched from the dev server with Range requests, greedy ids = golden. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { greedyGolden } from '../models';
import { startBrowser, type BrowserHarness } from '../../src/dev/browser';
import type { GoldenState } from './golden';

let harness: BrowserHarness;
beforeAll(async () => {
  harness = await startBrowser();
});
afterAll(() => harness?.close());

for (const [model, dtype] of [['stories260K', 'f32'], ['stories260K-f16', 'f16']] as const) {
  it(`greedy 200 tokens from BOS equal the golden ids in the browser (${model}, ${dtype})`, { timeout: 300_000 }, async () => {
    const golden = greedyGolden();
    const { page, consoleErrors } = await harness.newPage();
    const params = new URLSearchParams({ model, dtype, prompt: golden.prompt_ids.join(','), n: String(golden.new_tokens) });
    await page.goto(harness.url(`/test/browser/golden.html?${params}`));
    await page.waitForFunction(() => window.__golden?.done === true, undefined, { timeout: 280_000 });
    const state = (await page.evaluate(() => window.__golden)) as GoldenState;
    await page.close();
    expect(state.error, consoleErrors.join(' | ')).toBeUndefined();
    expect(state.ids).toEqual(golden.greedy_ids);
    expect(state.text).toMatch(/^Once upon a time, there was a little girl named Lily/);
  });
}
