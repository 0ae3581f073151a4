/**
 * The chat page's saved conversations and its JSON mode and tool calls, as `npm start` serves the page
 * (production build, a strict CSP plus the 'wasm-unsafe-eval' that constrained decoding needs), in headless
 * Chromium with stories260K on WebGPU: a conversation is listed and comes
 * back after a reload; the last message can be edited and sent again, the last reply regenerated and a
 * reply copied; a title renamed stays renamed; a page closed mid-reply keeps the reply so far, marked
 * interrupted; a deleted conversation is gone from IndexedDB. JSON mode constrains the reply to JSON (the
 * model knows none), and a forced tool call is shown as a block that is saved with the conversation; <llm-chat>
 * does the same through its jsonMode, tools and toolChoice properties, also ones set before the element was
 * defined. A message sent while another conversation is being opened stays where it was sent.
 */
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LlmChatElement } from '../../src/embed/llm-chat';
import type { ChatPageState } from '../../src/ui/chat/app';
import { startPreviewBrowser, WASM_CSP, type BrowserHarness } from '../../src/dev/browser';

const PROMPT = 'Once upon a time';

let harness: BrowserHarness;
let context: BrowserContext;
let page: Page;
const pageErrors: string[] = [];

/** A page of the test's one browser context: storage (IndexedDB, localStorage) outlives each page. */
async function openPage(): Promise<Page> {
  const opened = await context.newPage();
  opened.on('pageerror', (e) => pageErrors.push(e.message));
  opened.on('dialog', (dialog) => void dialog.accept());
  // WebGPU, though SwiftShader is a software adapter: the CPU path would end a reply before the page closes.
  await opened.goto(harness.url('/?backend=webgpu'));
  await waitForStatus('ready', opened);
  return opened;
}

beforeAll(async () => {
  harness = await startPreviewBrowser(WASM_CSP);
  context = await harness.browser.newContext();
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  page = await openPage();
});
afterAll(() => harness?.close());

type Snapshot = Pick<ChatPageState, 'status' | 'messages' | 'lastRequest' | 'lastFinishReason' | 'conversationId' | 'saves' | 'storageProblem'>;

async function chatState(on = page): Promise<Snapshot> {
  return on.evaluate(() => {
    const { status, messages, lastRequest, lastFinishReason, conversationId, saves, storageProblem } = window.__chat!;
    return { status, messages, lastRequest, lastFinishReason, conversationId, saves, storageProblem };
  });
}

async function waitForStatus(status: ChatPageState['status'], on = page): Promise<void> {
  await on.waitForFunction((s) => window.__chat?.status === s, status, { timeout: 120_000 });
}

/** Sends `text` and waits for the turn to end (a request was made and the page is ready again). */
async function send(text: string): Promise<void> {
  const before = await page.evaluateHandle(() => window.__chat!.lastRequest);
  await page.fill('.composer textarea', text);
  await page.press('.composer textarea', 'Enter');
  await page.waitForFunction((previous) => window.__chat!.lastRequest !== previous && window.__chat!.status === 'ready', before, { timeout: 120_000 });
  expect((await chatState()).lastRequest?.messages.at(-1)).toEqual({ role: 'user', content: text });
}

async function listed(on = page): Promise<{ id: string | null; title: string; meta: string; current: boolean }[]> {
  return on.locator('.conversation-list li[data-id]').evaluateAll((rows) =>
    rows.map((row) => ({
      id: row.getAttribute('data-id'),
      title: row.querySelector('.title')?.textContent ?? '',
      meta: row.querySelector('.meta')?.textContent ?? '',
      current: row.querySelector('.open')?.hasAttribute('aria-current') ?? false,
    })),
  );
}

/** Every key and value of the conversation store, as IndexedDB holds them. */
async function storedConversations(on = page): Promise<{ keys: string[]; values: string }> {
  return on.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open('webgpu-llm-chat');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const tx = open.result.transaction('conversations', 'readonly');
          const store = tx.objectStore('conversations');
          const keys = store.getAllKeys();
          const values = store.getAll();
          tx.oncomplete = () => {
            resolve({ keys: keys.result.map(String), values: JSON.stringify(values.result) });
            open.result.close();
          };
        };
      }),
  );
}

it('saves a conversation as it goes, lists it (title, date, model) and reopens it after a reload', async () => {
  await page.fill('input[name=temperature]', '0');
  await page.fill('input[name=maxTokens]', '24');
  await send(PROMPT);
  const before = await chatState();
  expect(before.storageProblem).toBeNull();
  expect(before.messages).toHaveLength(2);
  const rows = await listed();
  expect(rows).toEqual([{ id: before.conversationId, title: PROMPT, meta: expect.stringContaining('stories260K'), current: true }]);

  await page.reload();
  await waitForStatus('ready');
  const after = await chatState();
  expect(after.conversationId).toBe(before.conversationId);
  expect(after.messages).toEqual(before.messages);
  await expect(page.locator('.message').count()).resolves.toBe(2);
  await expect(page.locator('.message.user .body').textContent()).resolves.toBe(PROMPT);
  expect(await listed()).toEqual(rows);
});

it('edits and resends the last message, regenerates the last reply, copies a reply', async () => {
  await page.click('.message.user .edit');
  await expect(page.locator('.composer textarea').inputValue()).resolves.toBe(PROMPT);
  await expect(page.locator('.edit-note').isVisible()).resolves.toBe(true);
  await page.press('.composer textarea', 'Escape');
  await expect(page.locator('.composer textarea').inputValue()).resolves.toBe('');
  await expect(page.locator('.edit-note').isHidden()).resolves.toBe(true);
  await page.click('.message.user .edit');
  await send('Once upon a time, a cat');
  const edited = await chatState();
  expect(edited.messages.map((m) => m.role)).toEqual(['user', 'assistant']);
  expect(edited.messages[0].content).toBe('Once upon a time, a cat');
  expect(edited.lastRequest?.messages).toEqual([{ role: 'user', content: 'Once upon a time, a cat' }]);
  await expect(page.locator('.edit-note').isHidden()).resolves.toBe(true);
  expect((await listed())[0].title).toBe('Once upon a time, a cat');

  // Greedy: regenerating gives the same reply again, in place of the last one.
  const before = await page.evaluateHandle(() => window.__chat!.lastRequest);
  await page.click('.message.assistant .regenerate');
  await page.waitForFunction((previous) => window.__chat!.lastRequest !== previous && window.__chat!.status === 'ready', before);
  const regenerated = await chatState();
  expect(regenerated.messages).toEqual(edited.messages);
  expect(regenerated.lastRequest?.messages).toEqual([{ role: 'user', content: 'Once upon a time, a cat' }]);

  await page.click('.message.assistant .copy');
  // The label changes once the clipboard write has resolved.
  await page.waitForFunction(() => document.querySelector('.message.assistant .copy')?.textContent !== 'Copy');
  await expect(page.locator('.message.assistant .copy').textContent()).resolves.toBe('Copied');
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(regenerated.messages[1].content);
});

it('renames a conversation, and the name is kept as the conversation goes on', async () => {
  await page.click('.conversation-list .rename');
  await page.fill('.rename-form input', '  The cat story ');
  await page.press('.rename-form input', 'Enter');
  await page.waitForFunction(() => document.querySelector('.conversation-list .title')?.textContent === 'The cat story');
  await send('And then');
  expect((await listed()).map((r) => r.title)).toEqual(['The cat story']);
  // The list is read back from IndexedDB: what a reload shows.
  expect((await storedConversations()).values).toContain('"title":"The cat story"');
});

it('keeps the reply so far when the page is closed mid-reply, marked as interrupted', async () => {
  await page.click('.new-chat');
  expect((await chatState()).conversationId).toBeNull();
  await page.fill('input[name=maxTokens]', '480');
  await page.fill('.composer textarea', PROMPT);
  await page.press('.composer textarea', 'Enter');
  const savesBefore = (await chatState()).saves;
  // No actions while a reply is being written: an edit or regenerate would change the turn under it.
  await expect(page.locator('.message-actions').count()).resolves.toBe(0);
  // Several saves of the reply while it streams, then the page goes.
  await page.waitForFunction((n) => window.__chat!.saves >= n + 3, savesBefore, { timeout: 60_000 });
  const { status, conversationId } = await chatState();
  expect(status).toBe('generating');
  await page.close();

  page = await openPage();
  const reopened = await chatState();
  expect(reopened.conversationId).toBe(conversationId);
  expect(reopened.messages.map((m) => m.role)).toEqual(['user', 'assistant']);
  const kept = String(reopened.messages[1].content);
  expect(kept.length).toBeGreaterThan(0);
  const bubble = page.locator('.message.assistant').last();
  await expect(bubble.getAttribute('data-state')).resolves.toBe('interrupted');
  await expect(bubble.locator('.note').textContent()).resolves.toMatch(/^Interrupted/);
  // What was kept is the start of the reply the same greedy request gives (streamed until it is longer).
  const reply = await page.evaluate(
    async ({ prompt, length }) => {
      const request = { messages: [{ role: 'user' as const, content: prompt }], temperature: 0, max_tokens: 480, stream: true as const };
      let text = '';
      for await (const chunk of await window.__chat!.engine!.chat.completions.create(request)) {
        text += chunk.choices[0].delta.content ?? '';
        if (text.length > length) break;
      }
      return text;
    },
    { prompt: PROMPT, length: kept.length },
  );
  expect(reply.startsWith(kept)).toBe(true);
  expect(kept.length).toBeLessThan(reply.length);
  expect(await listed()).toHaveLength(2);
});

it('deletes a conversation for good: gone from the list, from IndexedDB, and after a reload', async () => {
  const { conversationId } = await chatState();
  const kept = (await listed()).find((r) => r.id !== conversationId)!;
  expect((await storedConversations()).keys).toContain(`entries:${conversationId}`);
  await page.click(`.conversation-list li[data-id="${conversationId}"] .delete`);
  await page.waitForFunction(() => document.querySelectorAll('.conversation-list li[data-id]').length === 1);
  const state = await chatState();
  expect(state.conversationId).toBeNull();
  expect(state.messages).toEqual([]);
  const stored = await storedConversations();
  expect(stored.keys.sort()).toEqual([`entries:${kept.id}`, `summary:${kept.id}`]);
  expect(stored.values).not.toContain(conversationId);
  await page.reload();
  await waitForStatus('ready');
  expect((await chatState()).messages).toEqual([]);
  expect((await listed()).map((r) => r.id)).toEqual([kept.id]);
});

it('a message sent while another conversation is being opened stays in the conversation it was sent in', async () => {
  const { conversationId: other } = await chatState();
  expect(other).toBeNull();
  const [{ id: saved }] = await listed();
  await page.fill('input[name=maxTokens]', '8');
  await send(PROMPT);
  const { conversationId: here } = await chatState();
  const before = await page.evaluateHandle(() => window.__chat!.lastRequest);
  // The open waits for IndexedDB; the message is sent in the same task as the click, before the open ends.
  await page.evaluate((id) => {
    document.querySelector<HTMLButtonElement>(`.conversation-list li[data-id="${id}"] .open`)!.click();
    document.querySelector<HTMLTextAreaElement>('.composer textarea')!.value = 'And then';
    document.querySelector<HTMLFormElement>('.composer')!.requestSubmit();
  }, saved);
  await page.waitForFunction((previous) => window.__chat!.lastRequest !== previous && window.__chat!.status === 'ready', before);
  const state = await chatState();
  expect(state.conversationId).toBe(here);
  expect(state.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
  expect(state.messages[2].content).toBe('And then');
  const stored = await storedConversations();
  expect(stored.values).not.toContain('"writing":true');
});

it('JSON mode constrains the reply to JSON, and switched off sends no response_format', async () => {
  await page.click('.new-chat');
  await page.fill('input[name=maxTokens]', '40');
  await page.check('input[name=jsonMode]');
  await send(PROMPT);
  const state = await chatState();
  expect(state.lastRequest?.response_format).toEqual({ type: 'json_object' });
  const reply = String(state.messages[1].content);
  // stories260K writes a JSON object that goes on past 40 tokens: a complete reply must parse.
  expect(reply.startsWith('{"')).toBe(true);
  if (state.lastFinishReason === 'stop') expect(typeof JSON.parse(reply)).toBe('object');
  const direct = await page.evaluate((request) => window.__chat!.engine!.chat.completions.create({ ...request!, stream: false }), state.lastRequest);
  expect(direct.choices[0].message.content).toBe(reply);

  await page.uncheck('input[name=jsonMode]');
  await send(PROMPT);
  const plain = await chatState();
  expect(plain.lastRequest).not.toHaveProperty('response_format');
  expect(String(plain.messages[3].content).startsWith('{')).toBe(false);
});

const tools = [
  {
    type: 'function' as const,
    function: {
      name: 'get_weather',
      parameters: { type: 'object', properties: { city: { enum: ['Paris', 'Oslo'] } }, required: ['city'], additionalProperties: false },
    },
  },
];

it('shows a forced tool call as a block (name and arguments), saved with the conversation', async () => {
  await page.click('.new-chat');
  await page.fill('input[name=maxTokens]', '120');
  await page.fill('textarea[name=tools]', JSON.stringify(tools));
  await page.selectOption('select[name=toolChoice]', 'required');
  await send('What is the weather?');
  const state = await chatState();
  expect(state.lastRequest).toMatchObject({ tools, tool_choice: 'required' });
  expect(state.lastFinishReason).toBe('tool_calls');
  const call = state.messages[1].tool_calls?.[0];
  expect(call?.function.name).toBe('get_weather');
  const args = JSON.parse(call!.function.arguments);
  expect(['Paris', 'Oslo']).toContain(args.city);

  const block = async () => ({
    name: await page.locator('.message.assistant .tool-call .name').textContent(),
    args: JSON.parse((await page.locator('.message.assistant .tool-call .arguments').textContent()) ?? ''),
  });
  expect(await block()).toEqual({ name: 'get_weather', args });
  expect((await storedConversations()).values).toContain(JSON.stringify(call));
  await page.fill('textarea[name=tools]', '');
  expect(pageErrors).toEqual([]);
});

it('<llm-chat> has JSON mode (attribute and property) and shows the tool calls its tools property leads to', async () => {
  const host = await context.newPage();
  host.on('pageerror', (e) => pageErrors.push(e.message));
  await host.goto(harness.url('/embed-example.html'));
  const chat = host.locator('llm-chat');
  const ready = () => host.waitForFunction(() => document.querySelector('llm-chat')?.getAttribute('data-status') === 'ready', undefined, { timeout: 120_000 });
  await ready();
  await chat.evaluate((el) => el.setAttribute('max-tokens', '120'));
  const ask = async (text: string) => {
    const replies = await chat.locator('.message.assistant').count();
    await chat.locator('.input').fill(text);
    await chat.locator('.input').press('Enter');
    await host.waitForFunction(
      (n) => {
        const el = document.querySelector('llm-chat');
        return el?.getAttribute('data-status') === 'ready' && el.shadowRoot!.querySelectorAll('.message.assistant').length > n;
      },
      replies,
      { timeout: 120_000 },
    );
  };

  await chat.evaluate((el) => ((el as LlmChatElement).jsonMode = true));
  await expect(chat.getAttribute('json-mode')).resolves.toBe('');
  await ask(PROMPT);
  const json = await chat.evaluate((el) => (el as LlmChatElement).messages.at(-1)!.content);
  expect(String(json).startsWith('{"')).toBe(true);

  await chat.evaluate((el, t) => {
    const element = el as LlmChatElement;
    element.jsonMode = false;
    element.tools = t;
    element.toolChoice = 'required';
    el.addEventListener('llm-reply', (e) => ((window as { lastReply?: unknown }).lastReply = (e as CustomEvent).detail), { once: true });
  }, tools);
  expect(await chat.getAttribute('json-mode')).toBeNull();
  await ask('What is the weather?');
  const reply = await host.evaluate(() => (window as { lastReply?: { toolCalls: { function: { name: string; arguments: string } }[]; finishReason: string } }).lastReply!);
  expect(reply.finishReason).toBe('tool_calls');
  expect(reply.toolCalls.map((c) => c.function.name)).toEqual(['get_weather']);
  await expect(chat.locator('.message.assistant').last().locator('.tool-call .name').textContent()).resolves.toBe('get_weather');
  const shown = await chat.locator('.message.assistant').last().locator('.tool-call .arguments').textContent();
  expect(JSON.parse(shown ?? '')).toEqual(JSON.parse(reply.toolCalls[0].function.arguments));

  // Properties a page sets before the element is defined are taken over when it is (an upgrade).
  const upgraded = await host.evaluate((t) => {
    const el = document.createElement('llm-chat-late') as HTMLElement & Record<string, unknown>;
    Object.assign(el, { tools: t, toolChoice: 'required', jsonMode: true });
    window.WebGPULLM!.defineLlmChat('llm-chat-late');
    customElements.upgrade(el);
    const chat = el as unknown as LlmChatElement;
    const hiding = ['tools', 'toolChoice', 'jsonMode'].filter((name) => Object.hasOwn(el, name));
    return { tools: chat.tools, toolChoice: chat.toolChoice, jsonMode: el.hasAttribute('json-mode'), hiding };
  }, tools);
  expect(upgraded).toEqual({ tools, toolChoice: 'required', jsonMode: true, hiding: [] });
  expect(pageErrors).toEqual([]);
  await host.close();
});
