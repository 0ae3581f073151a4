/** The generation API on stories260K: streaming, stop conditions, abort, queueing and KV reuse. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatTemplateError } from '../../src/chat/template';
import { memoryFiles } from '../../src/model/files';
import { createEngine, type Engine } from '../../src/engine/engine';
import { ContextWindowExceededError, InvalidOptionError, InvalidRequestError } from '../../src/engine/errors';
import { folderFiles } from '../../src/model/files-node';
import { greedyGolden, modelPath } from '../models';
import { testGpu } from '../gpu';

let engine: Engine;
beforeAll(async () => {
  // topKCapacity: the GPU top-k is tested here, on software adapters too (where the engine reads the logits by default).
  engine = await createEngine(folderFiles(modelPath('stories260K')), { gpu: await testGpu(), contextLength: 128, topKCapacity: 256 });
});
afterAll(() => engine?.dispose());

async function collect(stream: AsyncIterable<{ tokenIds: number[]; text: string }>): Promise<{ ids: number[]; text: string; deltas: string[] }> {
  const ids: number[] = [];
  const deltas: string[] = [];
  for await (const d of stream) {
    ids.push(...d.tokenIds);
    deltas.push(d.text);
  }
  return { ids, text: deltas.join(''), deltas };
}

describe('engine.generate', () => {
  it('greedy from BOS streams the golden ids, and deltas join to the full decode', async () => {
    const golden = greedyGolden();
    const stream = engine.generate(golden.prompt_ids, { temperature: 0, max_tokens: 30 });
    const { ids, text, deltas } = await collect(stream);
    expect(ids).toEqual(golden.greedy_ids.slice(0, 30));
    expect(text).toBe(engine.tokenizer.decode(ids, { skipSpecialTokens: true }));
    expect(deltas.some((d) => d.includes('\uFFFD'))).toBe(false);
    const result = await stream.result;
    expect(result.finishReason).toBe('length');
    expect(result.usage).toMatchObject({ prompt_tokens: 1, completion_tokens: 30, total_tokens: 31 });
    expect(result.timings.readback_bytes_per_token).toBe(4);
  });

  it('the same seed gives the same sampled text, another seed another', async () => {
    const run = (seed: number) => collect(engine.generate('Once upon a time', { temperature: 1, top_k: 40, seed, max_tokens: 20 }));
    const [a, b, c] = [await run(7), await run(7), await run(8)];
    expect(a.ids).toEqual(b.ids);
    expect(a.ids).not.toEqual(c.ids);
  });

  it('top-k sampling selects on the GPU and gives exactly what sampling the full logits gives', async () => {
    const options = { temperature: 0.9, top_k: 40, top_p: 0.95, seed: 11, max_tokens: 16 };
    const onGpu = engine.generate([1], options);
    const gpuIds = (await collect(onGpu)).ids;
    // A zero logit_bias changes nothing but sends the whole row back to the CPU.
    const onCpu = engine.generate([1], { ...options, logit_bias: { '0': 0 } });
    expect((await collect(onCpu)).ids).toEqual(gpuIds);
    expect((await onGpu.result).timings.readback_bytes_per_token).toBe(8 * 41);
    expect((await onCpu.result).timings.readback_bytes_per_token).toBe(4 * engine.spec.vocabSize);
  });

  it('beam search with one beam is greedy; with three it returns one finished sequence at once', async () => {
    const greedy = await collect(engine.generate([1], { temperature: 0, max_tokens: 6 }));
    const oneBeam = await collect(engine.generate([1], { num_beams: 1, temperature: 0, max_tokens: 6 }));
    expect(oneBeam.ids).toEqual(greedy.ids);
    const beams = engine.generate([1], { num_beams: 3, max_tokens: 6 });
    const { ids, deltas } = await collect(beams);
    expect(deltas).toHaveLength(1);
    expect(ids.length).toBeGreaterThan(0);
    expect(ids.length).toBeLessThanOrEqual(6);
    expect(['stop', 'length']).toContain((await beams.result).finishReason);
  });

  it('stops at a stop string that straddles tokens and leaves it out of the text', async () => {
    const full = await collect(engine.generate([1], { temperature: 0, max_tokens: 30 }));
    expect(full.text).toContain('little girl');
    const stream = engine.generate([1], { temperature: 0, max_tokens: 30, stop: ['le gi'] });
    const { text } = await collect(stream);
    expect(text).toBe(full.text.slice(0, full.text.indexOf('le gi')));
    expect((await stream.result).finishReason).toBe('stop');
  });

  it('rejects an empty prompt, a prompt longer than the context and unknown options with typed errors', () => {
    expect(() => engine.generate('')).toThrow(InvalidRequestError);
    const long = Array.from({ length: 200 }, () => 300);
    expect(() => engine.generate(long)).toThrow(ContextWindowExceededError);
    expect(() => engine.generate(long)).toThrow(/200 tokens but the context holds 128/);
    expect(() => engine.generate('hi', { temperature: -1 })).toThrow(InvalidOptionError);
    expect(() => engine.generate('hi', { bogus: 1 } as never)).toThrow(InvalidOptionError);
  });

  it('generate(p, null) and generate(5) are typed errors, and the next request works', async () => {
    expect(() => engine.generate('hi', null as never)).toThrow(InvalidRequestError);
    expect(() => engine.generate(5 as never)).toThrow(/prompt must be a string or an array of token ids, got number/);
    const after = await collect(engine.generate([1], { temperature: 0, max_tokens: 5 }));
    expect(after.ids).toEqual(greedyGolden().greedy_ids.slice(0, 5));
  });

  it('a 10 MB prompt is refused from its length before it is tokenized, and the next request works', async () => {
    const huge = 'x'.repeat(10_000_000);
    const t0 = performance.now();
    expect(() => engine.generate(huge)).toThrow(ContextWindowExceededError);
    expect(() => engine.generate(huge)).toThrow(/The prompt \(10,000,000 characters\) is at least \d+ tokens but the context holds 128/);
    await expect(engine.chat.completions.create({ messages: [{ role: 'user', content: huge }] })).rejects.toBeInstanceOf(ContextWindowExceededError);
    // Tokenizing 10 MB takes tens of seconds; the length check takes none of that.
    expect(performance.now() - t0).toBeLessThan(5000);
    const after = await collect(engine.generate([1], { temperature: 0, max_tokens: 5 }));
    expect(after.ids).toEqual(greedyGolden().greedy_ids.slice(0, 5));
  });

  it('an abort mid-stream ends within one token with finish_reason abort; the next request works', async () => {
    const controller = new AbortController();
    const stream = engine.generate([1], { temperature: 0, max_tokens: 50, signal: controller.signal });
    let count = 0;
    for await (const d of stream) {
      count += d.tokenIds.length;
      if (count === 5) controller.abort();
    }
    expect(count).toBe(5);
    expect((await stream.result).finishReason).toBe('abort');
    const after = await collect(engine.generate([1], { temperature: 0, max_tokens: 10 }));
    expect(after.ids).toEqual(greedyGolden().greedy_ids.slice(0, 10));
  });

  it('breaking out of the loop frees the engine for the next request', async () => {
    for await (const d of engine.generate([1], { temperature: 0, max_tokens: 50 })) {
      if (d.tokenIds.length) break;
    }
    const after = await collect(engine.generate([1], { temperature: 0, max_tokens: 5 }));
    expect(after.ids).toEqual(greedyGolden().greedy_ids.slice(0, 5));
  });

  it('two concurrent requests are served in order, each with its own correct output', async () => {
    const golden = greedyGolden().greedy_ids;
    const order: string[] = [];
    const consume = async (name: string, prompt: number[], n: number) => {
      const ids: number[] = [];
      for await (const d of engine.generate(prompt, { temperature: 0, max_tokens: n })) {
        order.push(name);
        ids.push(...d.tokenIds);
      }
      return ids;
    };
    const [a, b] = await Promise.all([consume('a', [1], 8), consume('b', [1, ...golden.slice(0, 4)], 6)]);
    expect(a).toEqual(golden.slice(0, 8));
    expect(b).toEqual(golden.slice(4, 10));
    expect(order.join('')).toMatch(/^a+b+$/);
  });

  it('reuses the KV cache for the common prefix and yields the same tokens as without reuse', async () => {
    const prompt = engine.tokenizer.encode('Once upon a time, there was a little dog');
    const first = engine.generate(prompt, { temperature: 0, max_tokens: 12 });
    const firstIds = (await collect(first)).ids;
    // Continue the "conversation": the previous prompt plus reply plus more text.
    const next = [...prompt, ...firstIds, ...engine.tokenizer.encode(' and', { addSpecialTokens: false })];
    const reused = engine.generate(next, { temperature: 0, max_tokens: 12 });
    const reusedIds = (await collect(reused)).ids;
    expect((await reused.result).usage.prompt_tokens_details.cached_tokens).toBe(prompt.length + firstIds.length - 1);

    // A fresh engine has nothing cached: the same request from scratch must give the same tokens.
    const fresh = await createEngine(folderFiles(modelPath('stories260K')), { gpu: await testGpu(), contextLength: 128 });
    const scratch = fresh.generate(next, { temperature: 0, max_tokens: 12 });
    expect((await collect(scratch)).ids).toEqual(reusedIds);
    expect((await scratch.result).usage.prompt_tokens_details.cached_tokens).toBe(0);
    await fresh.dispose();
  });
});

describe('engine.chat.completions.create', () => {
  it('returns a ChatCompletion with usage and timings; max_tokens gives finish_reason length', async () => {
    const completion = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Tell me a story.' }], max_tokens: 8, temperature: 0 });
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices[0].finish_reason).toBe('length');
    expect(completion.choices[0].message.content.length).toBeGreaterThan(0);
    expect(completion.usage.completion_tokens).toBe(8);
    expect(completion.usage.total_tokens).toBe(completion.usage.prompt_tokens + 8);
    expect(completion.timings.time_to_first_token_ms).toBeGreaterThan(0);
  });

  it('streams chunks whose content joins to the non-streamed reply; the last chunk has finish_reason and usage', async () => {
    const request = { messages: [{ role: 'user' as const, content: 'Tell me a story.' }], max_tokens: 10, temperature: 0 };
    const whole = await engine.chat.completions.create(request);
    const chunks = [];
    for await (const chunk of await engine.chat.completions.create({ ...request, stream: true })) chunks.push(chunk);
    expect(chunks.map((c) => c.choices[0].delta.content ?? '').join('')).toBe(whole.choices[0].message.content);
    const last = chunks.at(-1)!;
    expect(last.choices[0].finish_reason).toBe('length');
    expect(last.usage?.completion_tokens).toBe(10);
    expect(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null && c.usage === undefined)).toBe(true);
  });

  it('a request aborted while its prompt is encoded ends with the abort reason, and the next request works', async () => {
    const controller = new AbortController();
    const reason = new Error('stop');
    controller.abort(reason);
    await expect(engine.chat.completions.create({ messages: [{ role: 'user', content: 'Once upon a time' }] }, { signal: controller.signal })).rejects.toBe(reason);
    const reply = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 3, temperature: 0 });
    expect(reply.usage.completion_tokens).toBe(3);
  });

  it('a hostile chat template cannot hang a request: the budget stops it, and the engine serves the next one', async () => {
    const stories = folderFiles(modelPath('stories260K'));
    const weights = (await stories.bytes('model.safetensors'))!;
    const files = new Map<string, string | Uint8Array>([
      ['config.json', (await stories.text('config.json'))!],
      ['tokenizer.json', (await stories.text('tokenizer.json'))!],
      ['tokenizer_config.json', JSON.stringify({ chat_template: '{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}' })],
      ['model.safetensors', new Uint8Array(await weights.read(0, weights.size))],
    ]);
    const hostile = await createEngine(memoryFiles('hostile-template', files), { gpu: await testGpu(), contextLength: 64 });
    try {
      await expect(hostile.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }] })).rejects.toBeInstanceOf(ChatTemplateError);
      const after = await collect(hostile.generate([1], { temperature: 0, max_tokens: 5 }));
      expect(after.ids).toEqual(greedyGolden().greedy_ids.slice(0, 5));
    } finally {
      await hostile.dispose();
    }
  });

  it('rejects empty messages, bad roles and streamed beam search with typed errors', async () => {
    await expect(engine.chat.completions.create({ messages: [] })).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(engine.chat.completions.create({ messages: [{ role: 'robot', content: 'x' }] } as never)).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(engine.chat.completions.create({ messages: [{ role: 'user', content: 'x' }], stream: true, num_beams: 2 })).rejects.toBeInstanceOf(InvalidOptionError);
  });
});
