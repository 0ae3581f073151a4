/**
 * The official `openai` client, unchanged, against stories260K through createOpenAIFetch and through serve():
 * the answers must be the engine's own (and the greedy golden), errors must arrive as OpenAI's error classes
 * and statuses; the server also faces raw HTTP (bad JSON, oversized bodies, concurrency, disconnects).
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import OpenAI, { APIUserAbortError, BadRequestError, NotFoundError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../../src/engine/engine';
import type { ChatCompletions, RequestOptions } from '../../src/engine/types';
import { folderFiles } from '../../src/model/files-node';
import { serve, type OpenAIServer } from '../../src/node/serve';
import { createOpenAIFetch } from '../../src/openai/fetch';
import { testGpu } from '../gpu';
import { greedyGolden, modelPath } from '../models';

let engine: Engine;
let client: OpenAI;
const MODEL = 'stories260K';
const messages = [{ role: 'user' as const, content: 'Tell me a story about a cat.' }];

beforeAll(async () => {
  engine = await createEngine(folderFiles(modelPath('stories260K')), { gpu: await testGpu(), contextLength: 128 });
  client = new OpenAI({ apiKey: 'unused', baseURL: 'http://localhost/v1', fetch: createOpenAIFetch(engine, { modelId: MODEL }), maxRetries: 0 });
});
afterAll(() => engine?.dispose());

describe('createOpenAIFetch with the openai client', () => {
  it('chat completion: the engine’s own greedy reply, usage and model id', async () => {
    const direct = await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 12 });
    const completion = await client.chat.completions.create({ model: MODEL, messages, temperature: 0, max_tokens: 12 });
    expect(completion.object).toBe('chat.completion');
    expect(completion.model).toBe(MODEL);
    expect(completion.choices[0].message).toMatchObject({ role: 'assistant', content: direct.choices[0].message.content });
    expect(completion.choices[0].message.content!.length).toBeGreaterThan(0);
    expect(completion.choices[0].finish_reason).toBe('length');
    expect(completion.usage).toMatchObject({ prompt_tokens: direct.usage.prompt_tokens, completion_tokens: 12, total_tokens: direct.usage.prompt_tokens + 12 });
  });

  it('streamed chat: chunks join to the non-streamed reply, the last one carries finish_reason and usage', async () => {
    const whole = await client.chat.completions.create({ model: MODEL, messages, temperature: 0, max_tokens: 10 });
    const stream = await client.chat.completions.create({ model: MODEL, messages, temperature: 0, max_tokens: 10, stream: true, stream_options: { include_usage: true } });
    let text = '';
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(chunks.length).toBeGreaterThan(2);
    expect(text).toBe(whole.choices[0].message.content);
    const last = chunks.at(-1)!;
    expect(last.choices[0].finish_reason).toBe('length');
    expect(last.usage?.completion_tokens).toBe(10);
  });

  it('text completion from token ids reproduces the greedy golden, streamed and not', async () => {
    const golden = greedyGolden();
    const expected = engine.tokenizer.decode(golden.greedy_ids.slice(0, 20), { skipSpecialTokens: true });
    const completion = await client.completions.create({ model: MODEL, prompt: golden.prompt_ids, temperature: 0, max_tokens: 20 });
    expect(completion.object).toBe('text_completion');
    expect(completion.choices[0].text).toBe(expected);
    expect(completion.usage).toMatchObject({ prompt_tokens: golden.prompt_ids.length, completion_tokens: 20 });

    let streamed = '';
    for await (const chunk of await client.completions.create({ model: MODEL, prompt: golden.prompt_ids, temperature: 0, max_tokens: 20, stream: true })) {
      streamed += chunk.choices[0].text;
    }
    expect(streamed).toBe(expected);
  });

  it('text completion defaults to 16 tokens, as OpenAI does', async () => {
    const completion = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', temperature: 0 });
    expect(completion.usage?.completion_tokens).toBe(16);
  });

  it('the README’s openai snippet runs as written', async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const snippet = /```js\n(import OpenAI[\s\S]*?)```/.exec(readme)![1];
    const body = snippet.replace(/^import .*$/gm, '');
    const AsyncFunction = (async () => {}).constructor as new (...args: string[]) => (...values: unknown[]) => Promise<OpenAI.ChatCompletion>;
    const run = new AsyncFunction('OpenAI', 'createOpenAIFetch', 'engine', 'messages', `${body}\nreturn completion;`);
    const completion = await run(OpenAI, createOpenAIFetch, engine, messages);
    expect(completion.object).toBe('chat.completion');
    expect(completion.usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('lists and retrieves the one model; another id is a 404', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual([MODEL]);
    expect((await client.models.retrieve(MODEL)).id).toBe(MODEL);
    await expect(client.models.retrieve('gpt-4o')).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
  });

  it('maps bad requests to 400 with the parameter at fault', async () => {
    const bad = client.chat.completions.create({ model: MODEL, messages, temperature: -1, max_tokens: 4 });
    await expect(bad).rejects.toBeInstanceOf(BadRequestError);
    await expect(bad).rejects.toMatchObject({ status: 400, type: 'invalid_request_error', param: 'temperature', code: 'invalid_option' });

    const unknown = client.chat.completions.create({ model: MODEL, messages, max_tokens: 4, frobnicate: true } as never);
    await expect(unknown).rejects.toMatchObject({ status: 400, param: 'frobnicate' });

    const noMessages = client.chat.completions.create({ model: MODEL } as never);
    await expect(noMessages).rejects.toMatchObject({ status: 400, param: 'messages' });
  });

  it('a prompt longer than the context is 400 context_length_exceeded', async () => {
    const long = [{ role: 'user' as const, content: 'Once upon a time there was a cat. '.repeat(40) }];
    await expect(client.chat.completions.create({ model: MODEL, messages: long, max_tokens: 4 })).rejects.toMatchObject({
      status: 400,
      code: 'context_length_exceeded',
    });
  });

  it('an unknown route is 404 and a wrong method 405', async () => {
    await expect(client.get('/embeddings')).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.post('/models')).rejects.toMatchObject({ status: 405 });
  });

  it('abort mid-stream ends the stream (the client swallows its own abort) and frees the engine; abort before is APIUserAbortError', async () => {
    const controller = new AbortController();
    const stream = await client.chat.completions.create({ model: MODEL, messages, temperature: 0, max_tokens: 100, stream: true }, { signal: controller.signal });
    let chunks = 0;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content && ++chunks === 2) controller.abort();
    }
    expect(chunks).toBe(2);

    const aborted = new AbortController();
    aborted.abort();
    await expect(client.chat.completions.create({ model: MODEL, messages, max_tokens: 4 }, { signal: aborted.signal })).rejects.toBeInstanceOf(APIUserAbortError);

    const after = await client.chat.completions.create({ model: MODEL, messages, temperature: 0, max_tokens: 3 });
    expect(after.usage?.completion_tokens).toBe(3);
  });
});

describe('serve', () => {
  let server: OpenAIServer;
  let http: OpenAI;
  beforeAll(async () => {
    server = await serve(engine, { port: 0, modelId: MODEL, maxBodyBytes: 64 * 1024 });
    http = new OpenAI({ apiKey: 'unused', baseURL: server.url, maxRetries: 0 });
  });
  afterAll(() => server?.close());

  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

  it('binds to loopback and answers the openai client, streamed and not', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const direct = await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 8 });
    const completion = await http.chat.completions.create({ model: MODEL, messages, temperature: 0, max_tokens: 8 });
    expect(completion.choices[0].message.content).toBe(direct.choices[0].message.content);
    let text = '';
    for await (const chunk of await http.chat.completions.create({ model: MODEL, messages, temperature: 0, max_tokens: 8, stream: true })) {
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(text).toBe(direct.choices[0].message.content);
    expect((await http.models.list()).data[0].id).toBe(MODEL);
  });

  it('raw HTTP: bad JSON 400, oversized body 413, unknown route 404, foreign Host 403, all as OpenAI error objects', async () => {
    const badJson = await post('/chat/completions', '{"messages": [');
    expect(badJson.status).toBe(400);
    expect((await badJson.json()).error).toMatchObject({ type: 'invalid_request_error', message: expect.stringContaining('JSON') });

    // Declared too large, and sent in chunks with no length: both 413 (a write after the answer may see a reset).
    const huge = JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(100_000) }] });
    for (const headers of [{ 'content-length': String(huge.length) }, { 'transfer-encoding': 'chunked' }]) {
      const status = await new Promise<number | undefined>((resolve, reject) => {
        const req = httpRequest(`${server.url}/chat/completions`, { method: 'POST', headers }, (res) => resolve(res.resume().statusCode));
        req.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? undefined : reject(e)));
        req.end(huge);
      });
      expect(status).toBe(413);
    }

    const unknown = await fetch(`${server.url}/embeddings`, { method: 'POST', body: '{}' });
    expect(unknown.status).toBe(404);
    expect((await unknown.json()).error.code).toBe('unknown_url');

    // fetch cannot set Host; a page on a rebound name would send its own.
    const rebound = await new Promise<number | undefined>((resolve, reject) => {
      httpRequest(`${server.url}/models`, { headers: { host: `evil.example:${server.port}` } }, (res) => resolve(res.resume().statusCode)).on('error', reject).end();
    });
    expect(rebound).toBe(403);
  });

  it('concurrent clients are served one after another, each with its own answer', async () => {
    const prompts = ['A dog', 'A bird', 'A fish'].map((content) => [{ role: 'user' as const, content }]);
    const expected = [];
    for (const m of prompts) expected.push((await engine.chat.completions.create({ messages: m, temperature: 0, max_tokens: 6 })).choices[0].message.content);
    const answers = await Promise.all(prompts.map((m) => http.chat.completions.create({ model: MODEL, messages: m, temperature: 0, max_tokens: 6 })));
    expect(answers.map((a) => a.choices[0].message.content)).toEqual(expected);
  });

  it('a client that disconnects mid-stream stops its generation and frees the engine', async () => {
    // Counts the chunks the server pulls from the engine: a generation left running would pull all 100.
    let pulled = 0;
    const create = (async (request: Parameters<ChatCompletions['create']>[0], options?: RequestOptions) => {
      const chunks = await engine.chat.completions.create({ ...request, stream: true }, options);
      return (async function* () {
        for await (const chunk of chunks) {
          pulled++;
          yield chunk;
        }
      })();
    }) as unknown as ChatCompletions['create'];
    const counted = await serve({ chat: { completions: { create } }, generate: engine.generate.bind(engine) }, { port: 0 });
    const body = JSON.stringify({ model: MODEL, messages, temperature: 0, max_tokens: 100, stream: true });
    const url = new URL(`${counted.url}/chat/completions`);
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        expect(res.statusCode).toBe(200);
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (e) => (req.destroyed ? undefined : reject(e)));
      req.end(body);
    });
    // The next request waits for the engine, so the abandoned generation has ended by the time it answers.
    const next = await http.chat.completions.create({ model: MODEL, messages, temperature: 0, max_tokens: 2 });
    expect(next.usage?.completion_tokens).toBe(2);
    await counted.close();
    expect(pulled).toBeGreaterThan(0);
    expect(pulled).toBeLessThan(20);
  });
});
