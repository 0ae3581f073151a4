/**
 * Chromium without WebGPU, as many browsers are: the chat page and <llm-chat> as `npm start` serves them
 * (production build, the strict policy plus the two directives the CPU path needs) load stories260K on the CPU
 * path (llama.cpp in WebAssembly), say so and why, and reproduce the stories260K greedy golden.
 */
import type { Locator } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LlmChatElement } from '../../src/embed/llm-chat';
import { CPU_CSP, startPreviewBrowser, type BrowserHarness } from '../../src/dev/browser';
import { greedyGolden } from '../models';

let harness: BrowserHarness;
beforeAll(async () => {
  harness = await startPreviewBrowser(CPU_CSP, { webgpu: false });
});
afterAll(() => harness?.close());

const WHY = /navigator\.gpu is missing|requestAdapter/;

it('the chat page runs on the CPU path, says so in its status line, and gives the greedy golden', async () => {
  const { page, consoleErrors } = await harness.newPage();
  await page.goto(harness.url('/'));
  await page.waitForFunction(() => window.__chat?.status === 'ready' || window.__chat?.status === 'error', undefined, { timeout: 120_000 });
  const state = await page.evaluate(() => ({ status: window.__chat!.status, error: window.__chat!.error, backend: window.__chat!.info?.backend }));
  expect(state.error, consoleErrors.join(' | ')).toBeNull();
  expect(state.backend).toMatchObject({ backend: 'wasm', reason: expect.stringMatching(WHY) });
  await expect(page.locator('.stats').textContent()).resolves.toMatch(/ · CPU \(WebAssembly, \d+ threads?; .*(navigator\.gpu is missing|requestAdapter)/);

  const golden = greedyGolden();
  const ids = await page.evaluate(
    async ({ prompt, n }) => {
      const out: number[] = [];
      for await (const delta of window.__chat!.engine!.generate(prompt, { temperature: 0, max_tokens: n })) out.push(...delta.tokenIds);
      return out;
    },
    { prompt: golden.prompt_ids, n: golden.new_tokens },
  );
  expect(ids).toEqual(golden.greedy_ids);
});

it('<llm-chat> runs on the CPU path, says so in backend, and gives the greedy golden', async () => {
  const { page, consoleErrors } = await harness.newPage();
  await page.goto(harness.url('/embed-example.html'));
  await page.waitForFunction(() => ['ready', 'error'].includes(document.querySelector('llm-chat')?.getAttribute('data-status') ?? ''), undefined, { timeout: 120_000 });
  const chat: Locator = page.locator('llm-chat');
  await expect(chat.getAttribute('data-status'), consoleErrors.join(' | ')).resolves.toBe('ready');
  expect(await chat.evaluate((el) => (el as LlmChatElement).backend)).toMatchObject({ backend: 'wasm', reason: expect.stringMatching(WHY) });

  const golden = greedyGolden();
  const ids = await chat.evaluate(
    async (el, { prompt, n }) => {
      const out: number[] = [];
      for await (const delta of (el as LlmChatElement).engine!.generate(prompt, { temperature: 0, max_tokens: n })) out.push(...delta.tokenIds);
      return out;
    },
    { prompt: golden.prompt_ids, n: golden.new_tokens },
  );
  expect(ids).toEqual(golden.greedy_ids);
});
