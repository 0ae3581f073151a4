/**
 * logprobs / top_logprobs on stories260K (f32 weights, f32 KV cache): the values against log-softmax of the
 * independent CPU reference forward pass, the top-k GPU read against the full row, and the chat shapes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../../src/engine/engine';
import type { GenerationStream, TokenLogprob } from '../../src/engine/types';
import { openSafetensors } from '../../src/formats/safetensors';
import { bytesSource } from '../../src/formats/sources';
import { parseModelConfig } from '../../src/model/config';
import { folderFiles } from '../../src/model/files-node';
import type { GpuModel } from '../../src/model/forward';
import { createReferenceModel, type ReferenceModel } from '../../src/model/reference';
import { loadCanonicalWeights, safetensorsWeightReader } from '../../src/model/weights';
import { compare } from '../../src/selftest/compare';
import { testGpu } from '../gpu';
import { modelPath, readModelBytes, readModelText } from '../models';

let engine: Engine;
let reference: ReferenceModel;
beforeAll(async () => {
  // topKCapacity: the GPU top-k and log-sum-exp are tested here, on software adapters too (the engine's default there is none).
  engine = await createEngine(folderFiles(modelPath('stories260K')), { gpu: await testGpu(), contextLength: 64, kvDtype: 'f32', topKCapacity: 256 });
  const spec = parseModelConfig(JSON.parse(readModelText('stories260K', 'config.json')));
  const file = await openSafetensors(bytesSource(readModelBytes('stories260K', 'model.safetensors'), 'stories260K'));
  reference = createReferenceModel(spec, await loadCanonicalWeights(spec, safetensorsWeightReader(file), { dtype: 'f32' }));
});
afterAll(() => engine?.dispose());

async function run(stream: GenerationStream): Promise<{ ids: number[]; logprobs: TokenLogprob[] }> {
  const ids: number[] = [];
  const logprobs: TokenLogprob[] = [];
  for await (const d of stream) {
    ids.push(...d.tokenIds);
    logprobs.push(...(d.logprobs ?? []));
  }
  return { ids, logprobs };
}

/** log-softmax in f64. */
function logSoftmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const l of logits) max = Math.max(max, l);
  let sum = 0;
  for (const l of logits) sum += Math.exp(l - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(logits, (l) => l - lse);
}

describe('logprobs', () => {
  it('greedy: the chosen and top-20 log-probabilities match log-softmax of the CPU reference', async () => {
    const prompt = [1, 403, 407];
    const { ids, logprobs } = await run(engine.generate(prompt, { temperature: 0, max_tokens: 10, logprobs: true, top_logprobs: 20 }));
    expect(logprobs).toHaveLength(ids.length);
    let logits = new Float32Array();
    prompt.forEach((t, p) => (logits = reference.forward(t, p)));
    const actual: number[] = [];
    const expected: number[] = [];
    ids.forEach((id, step) => {
      const ref = logSoftmax(logits);
      const order = Array.from(ref.keys()).sort((a, b) => ref[b] - ref[a] || a - b).slice(0, 20);
      const entry = logprobs[step];
      expect(entry.top_logprobs.map((t) => t.bytes)).toEqual(order.map((o) => Array.from(engine.tokenizer.tokenBytes(o))));
      expect(entry.bytes).toEqual(Array.from(engine.tokenizer.tokenBytes(id)));
      expect(entry.token).toBe(new TextDecoder().decode(engine.tokenizer.tokenBytes(id)));
      actual.push(entry.logprob, ...entry.top_logprobs.map((t) => t.logprob));
      expected.push(ref[id], ...order.map((o) => ref[o]));
      logits = reference.forward(id, prompt.length + step);
    });
    expect(compare(actual, expected).nmse).toBeLessThanOrEqual(1e-5);
  });

  it('greedy: the GPU top-k and log-sum-exp read give the full row\'s values and ids from 8·k + 4 bytes', async () => {
    const options = { temperature: 0, max_tokens: 12, logprobs: true, top_logprobs: 7 };
    // What the model really read back (its own count, not the engine's formula).
    const model = (engine as unknown as { loaded: { model: GpuModel } }).loaded.model;
    const before = model.stats.readbackBytes;
    const onGpu = engine.generate([1, 403], options);
    const gpu = await run(onGpu);
    expect(model.stats.readbackBytes - before).toBe(gpu.ids.length * (8 * 7 + 4));
    // A zero logit_bias changes nothing but reads the whole row back, for log-softmax on the CPU.
    const cpu = await run(engine.generate([1, 403], { ...options, logit_bias: { '0': 0 } }));
    expect(gpu.ids).toEqual(cpu.ids);
    const shape = (list: TokenLogprob[]) => list.map((c) => [c.token, c.bytes, c.top_logprobs.map((t) => t.token)]);
    const values = (list: TokenLogprob[]) => list.flatMap((c) => [c.logprob, ...c.top_logprobs.map((t) => t.logprob)]);
    expect(shape(gpu.logprobs)).toEqual(shape(cpu.logprobs));
    expect(compare(values(gpu.logprobs), values(cpu.logprobs)).nmse).toBeLessThanOrEqual(1e-10);
    expect((await onGpu.result).timings.readback_bytes_per_token).toBe(8 * 7 + 4);
    // top_logprobs 0 still reads one candidate, the greedy token, for its own log-probability.
    const alone = await run(engine.generate([1, 403], { ...options, top_logprobs: 0 }));
    expect(alone.ids).toEqual(gpu.ids);
    expect(alone.logprobs.map((c) => c.logprob)).toEqual(gpu.logprobs.map((c) => c.logprob));
    expect(alone.logprobs.every((c) => c.top_logprobs.length === 0)).toBe(true);
  });

  it('top-k sampling: the GPU candidates give the same values as the full row (the distribution after top_k)', async () => {
    const options = { temperature: 0.8, top_k: 30, seed: 5, max_tokens: 12, logprobs: true, top_logprobs: 5 };
    const onGpu = engine.generate([1], options);
    const gpu = await run(onGpu);
    // A zero logit_bias changes nothing but reads the whole row back.
    const cpu = await run(engine.generate([1], { ...options, logit_bias: { '0': 0 } }));
    expect(gpu.ids).toEqual(cpu.ids);
    expect(gpu.logprobs).toEqual(cpu.logprobs);
    expect((await onGpu.result).timings.readback_bytes_per_token).toBe(8 * 31);
    for (const entry of gpu.logprobs) {
      expect(entry.top_logprobs).toHaveLength(5);
      // Each probability is over the 30 kept tokens, so the five best carry more than 5/30 of the mass.
      expect(entry.top_logprobs.reduce((s, t) => s + Math.exp(t.logprob), 0)).toBeGreaterThan(5 / 30);
    }
  });

  it('chat: logprobs per token in the completion, the same ones across the stream’s chunks; null when not asked', async () => {
    const messages = [{ role: 'user' as const, content: 'Tell me a story.' }];
    const request = { messages, temperature: 0, max_tokens: 8, logprobs: true, top_logprobs: 3 };
    const completion = await engine.chat.completions.create(request);
    const content = completion.choices[0].logprobs!.content;
    expect(content).toHaveLength(completion.usage.completion_tokens);
    expect(content.map((c) => c.token).join('')).toContain(completion.choices[0].message.content.trim());
    const streamed: TokenLogprob[] = [];
    for await (const chunk of await engine.chat.completions.create({ ...request, stream: true })) streamed.push(...(chunk.choices[0].logprobs?.content ?? []));
    // The second request reuses the cached prompt, so its last prompt position runs as a decode step, not in
    // the prefill: the logits agree to rounding, not bit for bit.
    const tokens = (list: TokenLogprob[]) => list.map((c) => [c.token, c.bytes, c.top_logprobs.map((t) => t.token)]);
    const values = (list: TokenLogprob[]) => list.flatMap((c) => [c.logprob, ...c.top_logprobs.map((t) => t.logprob)]);
    expect(tokens(streamed)).toEqual(tokens(content));
    expect(compare(values(streamed), values(content)).nmse).toBeLessThanOrEqual(1e-8);
    const plain = await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 4 });
    expect(plain.choices[0].logprobs).toBeNull();
    expect(plain.timings.readback_bytes_per_token).toBe(4);
  });
});
