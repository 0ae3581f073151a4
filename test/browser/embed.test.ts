/**
 * The script-tag build on a host page (public/embed-example.html: one <script>, one <llm-chat>), served
 * under a strict Content-Security-Policy: the element loads stories260K in a worker started from the
 * script file itself, chats, and matches what its engine returns for the same request.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LlmChatElement } from '../../src/embed/llm-chat';
import { ROOT, startPreviewBrowser, STRICT_CSP, type BrowserHarness } from '../../src/dev/browser';

declare global {
  interface Window {
    __cspViolations?: string[];
  }
}

let harness: BrowserHarness;
beforeAll(async () => {
  harness = await startPreviewBrowser();
});
afterAll(() => harness?.close());

function engineMode(chat: Locator): Promise<string | null> {
  return chat.evaluate((el) => ('engineMode' in el ? String(el.engineMode) : null));
}

/** Types into the element, waits for the reply, and checks it against a direct request to its engine. */
async function chatOnce(page: Page, chat: Locator, text: string): Promise<string> {
  await chat.locator('.input').fill(text);
  await chat.locator('.input').press('Enter');
  await page.waitForFunction(() => {
    const el = document.querySelector('llm-chat');
    return el?.getAttribute('data-status') === 'ready' && (el.shadowRoot?.querySelectorAll('.message.assistant').length ?? 0) > 0;
  });
  const reply = await chat.locator('.message.assistant').last().locator('.body').innerText();
  expect(reply.trim().length).toBeGreaterThan(0);
  const direct = await chat.evaluate(async (el) => {
    if (!isChatElement(el)) throw new Error('not an llm-chat');
    const completion = await el.engine!.chat.completions.create({ messages: el.messages.slice(0, -1), temperature: 0, max_tokens: 60 });
    return { content: completion.choices[0].message.content, streamed: el.messages.at(-1)?.content };
    function isChatElement(e: Element): e is LlmChatElement {
      return e.localName === 'llm-chat';
    }
  });
  expect(direct.streamed).toBe(direct.content);
  return reply;
}

/** A message past the context: the turn is taken back, the error says why and its New chat empties the chat. */
async function tooLongThenNewChat(page: Page, chat: Locator): Promise<void> {
  const messageCount = () => chat.evaluate((el) => ('messages' in el && Array.isArray(el.messages) ? el.messages.length : -1));
  const before = await messageCount();
  expect(before).toBeGreaterThan(0);
  const tooLong = 'Once upon a time there was a very long story. '.repeat(60);
  await chat.locator('.input').fill(tooLong);
  await chat.locator('.input').press('Enter');
  await chat.locator('.error .new-chat').waitFor();
  await page.waitForFunction(() => document.querySelector('llm-chat')?.getAttribute('data-status') === 'ready');
  await expect(chat.locator('.error strong').textContent()).resolves.toBe('The conversation is too long');
  expect(await messageCount()).toBe(before);
  await expect(chat.locator('.message').count()).resolves.toBe(before);
  await expect(chat.locator('.input').inputValue()).resolves.toBe(tooLong);
  await chat.locator('.error .new-chat').click();
  expect(await messageCount()).toBe(0);
  await expect(chat.locator('.message').count()).resolves.toBe(0);
  await expect(chat.locator('.error').isHidden()).resolves.toBe(true);
  await chat.locator('.input').fill('');
}

it('chats through <llm-chat> from the one-file build under a strict CSP', { timeout: 240_000 }, async () => {
  const { page, consoleErrors } = await harness.newPage();
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations!.push(`${e.violatedDirective}: ${e.blockedURI}`));
  });
  const response = await page.goto(harness.url('/embed-example.html'));
  expect(response?.headers()['content-security-policy']).toBe(STRICT_CSP);
  const chat = page.locator('llm-chat');
  await page.waitForFunction(() => document.querySelector('llm-chat')?.getAttribute('data-status') === 'ready', undefined, { timeout: 120_000 });
  expect(await engineMode(chat)).toBe('worker');
  // SwiftShader is a software adapter, so auto tried the CPU path first; the policy refuses WebAssembly, so WebGPU it is.
  expect(await chat.evaluate((el) => (el as LlmChatElement).backend)).toMatchObject({ backend: 'webgpu', reason: expect.stringMatching(/software adapter.*'wasm-unsafe-eval'/) });
  expect(await page.evaluate(() => typeof window.WebGPULLM?.createEngine)).toBe('function');

  await chatOnce(page, chat, 'Once upon a time');
  await tooLongThenNewChat(page, chat);
  mkdirSync(resolve(ROOT, 'test-output'), { recursive: true });
  await page.screenshot({ path: resolve(ROOT, 'test-output/embed.png'), fullPage: true });

  // The same element with the engine in the page's own thread (the fallback where no worker may start).
  await chat.evaluate((el) => el.setAttribute('in-thread', ''));
  // Until the element starts its reload it still says ready, with the worker's engine: wait for the new engine.
  await page.waitForFunction(
    () => {
      const el = document.querySelector('llm-chat');
      return el?.getAttribute('data-status') === 'ready' && el && 'engineMode' in el && el.engineMode === 'in-thread';
    },
    undefined,
    { timeout: 120_000 },
  );
  expect(await engineMode(chat)).toBe('in-thread');
  await chatOnce(page, chat, 'The cat');

  // The one report: the in-thread engine's check that WebAssembly may compile here (the worker's goes unseen by the page).
  expect(await page.evaluate(() => window.__cspViolations)).toEqual(['script-src: wasm-eval']);
  expect(consoleErrors.filter((e) => !/status of 404|'wasm-unsafe-eval'/.test(e))).toEqual([]);
  await page.close();
});
