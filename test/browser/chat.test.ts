/**
 * The chat page as `npm start` serves it (production build, `vite preview`, a strict CSP), in headless
 * Chromium: the default model (stories260K from the local models folder) downloads with progress into
 * IndexedDB, replies stream exactly what the engine produces, Stop stops, a reload loads from the cache,
 * hostile model output stays inert, JSON mode under this policy (no 'wasm-unsafe-eval') says what the policy
 * lacks, a message the context cannot hold is taken back with New chat offered,
 * a lost device is recovered without losing the conversation, a model folder without config.json ends in its typed error,
 * and a chat chunk that cannot download leaves a message, not a blank page.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ChatPageState } from '../../src/ui/chat/app';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';
import { greedyGolden, modelPath } from '../models';
import { ROOT, startPreviewBrowser, type BrowserHarness } from '../../src/dev/browser';

declare global {
  interface Window {
    __xss?: number;
  }
}

const MODEL_ID = 'local/stories260K';
const PROMPT = 'Once upon a time, there was a little dog';

let harness: BrowserHarness;
let page: Page;
let consoleErrors: string[];
const requests: string[] = [];
const failed: string[] = [];
/** Files a model folder may lack; the cache asks for them and takes a 404 as "none". */
const OPTIONAL_FILES = /^\/models\/stories260K\/(generation_config\.json|chat_template\.jinja|model\.safetensors\.index\.json)$/;

beforeAll(async () => {
  harness = await startPreviewBrowser();
  ({ page, consoleErrors } = await harness.newPage());
  page.on('request', (r) => requests.push(new URL(r.url()).pathname));
  page.on('response', (r) => {
    if (r.status() >= 400) failed.push(new URL(r.url()).pathname);
  });
});
afterAll(() => harness?.close());

/** The page's state without the engine (a worker proxy, which does not survive the trip to Node). */
async function chatState(): Promise<Omit<ChatPageState, 'engine' | 'showAssistantMessage'>> {
  return page.evaluate(() => {
    const { engine: _engine, showAssistantMessage: _show, ...rest } = window.__chat!;
    return rest;
  });
}

async function waitForStatus(status: ChatPageState['status'], timeout = 120_000): Promise<void> {
  await page.waitForFunction((s) => window.__chat?.status === s, status, { timeout });
}

async function send(text: string): Promise<void> {
  await page.fill('.composer textarea', text);
  await page.press('.composer textarea', 'Enter');
  await page.waitForFunction(() => window.__chat?.status === 'generating' || window.__chat?.status === 'ready');
}

it('loads the default model (stories260K) from the local models folder with download progress', async () => {
  await page.goto(harness.url('/'));
  await waitForStatus('ready');
  const state = await chatState();
  expect(state.modelId).toBe(MODEL_ID);
  expect(state.error).toBeNull();
  expect(state.info?.usesFallbackTemplate).toBe(true);
  expect(state.progressEvents).toBeGreaterThan(1);
  expect(state.lastDownload?.phase).toBe('download');
  expect(state.lastDownload?.total).toBeGreaterThan(0);
  expect(state.lastDownload?.loaded).toBe(state.lastDownload?.total);
  expect(requests.filter((p) => p.startsWith('/models/stories260K/')).length).toBeGreaterThan(0);
  // The only failures: optional files the folder does not have (the browser logs each 404 as an error).
  expect(failed.filter((p) => !OPTIONAL_FILES.test(p))).toEqual([]);
  expect(consoleErrors.filter((e) => !/status of 404/.test(e))).toEqual([]);
  await expect(page.locator('#model').inputValue()).resolves.toBe(MODEL_ID);
  await expect(page.locator('.cached li').first().textContent()).resolves.toContain('stories260K');
});

it('a prompt longer than a short chunk, sent at ready, waits for the kernels compiling after ready and is answered', async () => {
  // 40 tokens: over the 32 a software adapter's short-chunk plan takes, so the tiled prefill plan runs it.
  const prompt = [1, ...Array.from({ length: 39 }, (_, i) => 300 + i)];
  const sent = await page.evaluate(async (ids) => {
    const chat = window.__chat!;
    const compiledAtSend = chat.loadTimeline.compiledMs;
    // New chat while compiling keeps saying so.
    document.querySelector<HTMLButtonElement>('.new-chat')!.click();
    const statsAfterNewChat = document.querySelector('.stats')!.textContent;
    const stream = chat.engine!.generate(ids, { temperature: 0, max_tokens: 4 });
    for await (const _ of stream);
    const tokens = (await stream.result).usage.completion_tokens;
    return { compiledAtSend, statsAfterNewChat, tokens, compiledAtReply: chat.loadTimeline.compiledMs };
  }, prompt);
  expect(sent.compiledAtSend).toBeNull();
  expect(sent.statsAfterNewChat).toContain('compiling the kernels for long prompts');
  expect(sent.tokens).toBe(4);
  // The reply needed the kernels compiled after ready: the page heard they were done before it arrived.
  expect(sent.compiledAtReply).not.toBeNull();
  await expect(page.locator('.stats').textContent()).resolves.not.toContain('compiling');
});

it('greedy generation in the worker reproduces the golden ids and text exactly', async () => {
  const golden = greedyGolden();
  const result = await page.evaluate(
    async ({ prompt, n }) => {
      const stream = window.__chat!.engine!.generate(prompt, { temperature: 0, max_tokens: n });
      const ids: number[] = [];
      let text = '';
      for await (const delta of stream) {
        ids.push(...delta.tokenIds);
        text += delta.text;
      }
      return { ids, text, finishReason: (await stream.result).finishReason };
    },
    { prompt: golden.prompt_ids, n: golden.new_tokens },
  );
  const tokenizer = loadTokenizer({
    tokenizerJson: readFileSync(modelPath('stories260K/tokenizer.json'), 'utf8'),
    tokenizerConfig: readFileSync(modelPath('stories260K/tokenizer_config.json'), 'utf8'),
  });
  expect(result.ids).toEqual(golden.greedy_ids);
  expect(result.text).toBe(tokenizer.decode(golden.greedy_ids, { skipSpecialTokens: true }));
  expect(result.finishReason).toBe('length');
});

it('streams a reply equal to what chat.completions.create returns for the same messages', async () => {
  await page.fill('input[name=temperature]', '0');
  await page.fill('input[name=maxTokens]', '48');
  await send(PROMPT);
  await waitForStatus('ready');
  const state = await chatState();
  expect(state.error).toBeNull();
  expect(state.messages).toHaveLength(2);
  const streamed = state.messages[1].content;
  expect(typeof streamed === 'string' && streamed.length > 0).toBe(true);
  expect(state.lastRequest?.temperature).toBe(0);
  expect(state.lastRequest?.messages).toEqual([{ role: 'user', content: PROMPT }]);

  const direct = await page.evaluate(async (request) => {
    const completion = await window.__chat!.engine!.chat.completions.create({ ...request, stream: false });
    return completion.choices[0];
  }, state.lastRequest!);
  expect(streamed).toBe(direct.message.content);
  expect(state.lastFinishReason).toBe(direct.finish_reason);

  // What is on screen is that text (Markdown turns line breaks into paragraphs and <br>).
  const shown = await page.locator('.message.assistant').last().locator('.body').innerText();
  const squash = (s: string) => s.replace(/\s+/g, ' ').trim();
  expect(squash(shown)).toBe(squash(String(streamed)));
  const timings = state.lastTimings!;
  expect(timings.time_to_first_token_ms).toBeGreaterThan(0);
  await expect(page.locator('.stats').textContent()).resolves.toMatch(/first token \d+ ms · [\d.]+ tokens\/s/);
});

it('Stop ends a reply mid-stream and the chat goes on', async () => {
  await page.click('.new-chat');
  await page.fill('input[name=maxTokens]', '480');
  await send(PROMPT);
  await page.waitForFunction(() => (document.querySelector('.message.assistant:last-child .body')?.textContent ?? '').length > 20);
  await page.click('.stop');
  await waitForStatus('ready');
  const state = await chatState();
  expect(state.lastFinishReason).toBe('abort');
  expect(state.lastUsage!.completion_tokens).toBeLessThan(480);
  await expect(page.locator('.message.assistant').last().getAttribute('data-state')).resolves.toBe('stopped');

  await page.fill('input[name=maxTokens]', '16');
  await send('The end');
  await waitForStatus('ready');
  expect((await chatState()).messages).toHaveLength(4);
});

it('renders hostile model output as inert text', async () => {
  const hostile = [
    '<script>window.__xss = 1</script>',
    '',
    '<img src=x onerror="window.__xss = 2"> and <iframe src="javascript:window.__xss=3"></iframe>',
    '',
    '[click me](javascript:window.__xss=4) [ok](https://example.com/a?b=1) **bold** *it* `<b>code</b>`',
    '',
    '```html',
    '<script>window.__xss = 5</script>',
    '```',
    '',
    '- item <svg onload="window.__xss = 6">',
    '- [data](data:text/html,<script>window.__xss=7</script>)',
  ].join('\n');
  await page.evaluate((text) => {
    window.__xss = 0;
    window.__chat!.showAssistantMessage(text);
  }, hostile);
  await page.waitForTimeout(300);
  const bubble = page.locator('.message.assistant').last();
  const report = await bubble.evaluate((el) => ({
    elements: [...el.querySelectorAll('*')].map((e) => e.tagName.toLowerCase()),
    hrefs: [...el.querySelectorAll('a')].map((a) => ({ href: a.getAttribute('href'), rel: a.rel })),
    text: el.textContent ?? '',
    xss: window.__xss,
  }));
  expect(report.xss).toBe(0);
  for (const tag of ['script', 'img', 'iframe', 'svg']) expect(report.elements).not.toContain(tag);
  expect(report.elements).toEqual(expect.arrayContaining(['p', 'strong', 'em', 'code', 'pre', 'ul', 'li', 'a']));
  expect(report.hrefs).toEqual([{ href: 'https://example.com/a?b=1', rel: 'noopener noreferrer' }]);
  expect(report.text).toContain('<script>window.__xss = 1</script>');
  expect(report.text).toContain('<img src=x onerror="window.__xss = 2"> and <iframe src="javascript:window.__xss=3"></iframe>');
  expect(report.text).toContain('<b>code</b>');
});

it('fits 1280 px and 360 px screens (screenshots)', async () => {
  mkdirSync(resolve(ROOT, 'test-output'), { recursive: true });
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: resolve(ROOT, 'test-output/chat.png') });
  await page.setViewportSize({ width: 360, height: 740 });
  await page.waitForTimeout(200);
  await page.screenshot({ path: resolve(ROOT, 'test-output/chat-360.png') });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await page.setViewportSize({ width: 1280, height: 800 });
});

it('JSON mode under a policy without \'wasm-unsafe-eval\' says what the policy lacks and gives the message back', async () => {
  const before = (await chatState()).messages;
  await page.check('input[name=jsonMode]');
  await send('Hello');
  await page.locator('.banner.request').waitFor();
  await waitForStatus('ready');
  const state = await chatState();
  expect(state.error).toMatchObject({ name: 'InvalidRequestError', kind: 'request', message: expect.stringContaining("'wasm-unsafe-eval'") });
  expect(state.messages).toEqual(before);
  await expect(page.locator('.composer textarea').inputValue()).resolves.toBe('Hello');
  await page.uncheck('input[name=jsonMode]');
  await page.fill('.composer textarea', '');
  await page.click('.banner.request .dismiss');
});

it('takes back a message the context cannot hold, says the conversation is too long and offers New chat', async () => {
  const before = (await chatState()).messages;
  expect(before.length).toBeGreaterThan(0);
  const bubbles = await page.locator('.message').count();
  // Far past stories260K's 512 positions, so the engine refuses the prompt.
  const tooLong = 'Once upon a time there was a very long story. '.repeat(60);
  await send(tooLong);
  await page.locator('.banner.context').waitFor();
  await waitForStatus('ready');
  const state = await chatState();
  expect(state.error?.kind).toBe('context');
  expect(state.messages).toEqual(before);
  await expect(page.locator('.message').count()).resolves.toBe(bubbles);
  await expect(page.locator('.composer textarea').inputValue()).resolves.toBe(tooLong);
  await expect(page.locator('.banner.context strong').textContent()).resolves.toBe('The conversation is too long');

  await page.click('.banner.context .restart');
  expect((await chatState()).messages).toEqual([]);
  await expect(page.locator('.banner.context').count()).resolves.toBe(0);
  await expect(page.locator('.message').count()).resolves.toBe(0);
  await page.fill('.composer textarea', '');
  await send(PROMPT);
  await waitForStatus('ready');
  expect((await chatState()).messages).toHaveLength(2);
});

it('shows a device-lost banner whose Reload keeps the conversation', async () => {
  const before = (await chatState()).messages;
  await page.evaluate(() => window.__chat!.engine!.simulateDeviceLoss());
  await page.locator('.banner.device-lost').waitFor();
  expect((await chatState()).status).toBe('error');
  await page.click('.banner.device-lost .reload');
  await waitForStatus('ready');
  const after = await chatState();
  expect(after.messages).toEqual(before);
  await expect(page.locator('.banner.device-lost').count()).resolves.toBe(0);
  await send('And then');
  await waitForStatus('ready');
  expect((await chatState()).messages).toHaveLength(before.length + 2);
});

it('a reload loads the weights from IndexedDB without requesting the model files', async () => {
  requests.length = 0;
  consoleErrors.length = 0;
  await page.reload();
  await waitForStatus('ready');
  const state = await chatState();
  expect(state.modelId).toBe(MODEL_ID);
  expect(state.lastDownload).toBeNull();
  expect(requests.filter((p) => p.startsWith('/models/stories260K/'))).toEqual([]);
  expect(consoleErrors).toEqual([]);
});

it('says what to do where the browser has no WebGPU', async () => {
  const { page: bare } = await harness.newPage();
  await bare.addInitScript(() => Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined }));
  await bare.goto(harness.url('/'));
  await bare.waitForFunction(() => window.__chat?.status === 'error');
  const banner = bare.locator('.banner.no-webgpu');
  await expect(banner.textContent()).resolves.toMatch(/WebGPU is not available.*chrome:\/\/flags\/#enable-unsafe-webgpu/s);
  await bare.close();
});

it('shows the typed download error, not endless loading, when the default model folder lacks config.json', async () => {
  const { page: broken } = await harness.newPage();
  await broken.route('**/models/stories260K/config.json', (route) => route.fulfill({ status: 404, body: 'not found' }));
  await broken.goto(harness.url('/'));
  await broken.waitForFunction(() => window.__chat?.status === 'error', undefined, { timeout: 30_000 });
  const error = await broken.evaluate(() => window.__chat!.error);
  expect(error).toMatchObject({ name: 'HttpError', kind: 'download', message: expect.stringContaining('config.json') });
  await broken.close();
});

it('says the chat could not start, not a blank page, when the chat code itself fails to download', async () => {
  const { page: broken } = await harness.newPage();
  await broken.route('**/assets/app-*.js', (route) => route.abort());
  await broken.goto(harness.url('/'));
  const alert = broken.locator('[role=alert]');
  await alert.waitFor({ timeout: 30_000 });
  await expect(alert.textContent()).resolves.toMatch(/^The chat could not start: .+\. Reload the page to try again\.$/);
  await broken.close();
});
