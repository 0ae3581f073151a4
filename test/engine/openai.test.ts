/**
 * The official `openai` client, unchanged, against stories260K through createOpenAIFetch: the answers must be
 * the engine's own (and the greedy golden), errors must arrive as OpenAI's error classes and statuses.
 */
import OpenAI, { APIUserAbortError, BadRequestError, NotFoundError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../../src/engine/engine';
import { folderFiles } from '../../src/model/files-node';
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
