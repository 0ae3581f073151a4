/**
 * Browser half of the CPU-backend test (wasm.test.ts), by `?mode=`:
 * - `model`: stories260K on WasmModel (llama.cpp in WebAssembly; `dtype=q8|q4` as Q8_0/Q4_0) against the greedy
 *   golden and, position by position, against the independent CPU reference's next-token distribution;
 * - `engine`: createEngine with the default backend choice, and the engine's API on top of what it chose
 *   (greedy golden, usage, KV reuse, stop strings, seeded sampling through top-k and full logits, abort, the
 *   queue, chat);
 * - `webgpu`: what auto picks here, and createEngine with backend 'webgpu'.
 * Exposes the outcome as `window.__wasm`.
 */
import { reasonForWasm, type BackendChoice, type BackendRequest, type WasmReason } from '../../src/engine/backend';
import { createEngine } from '../../src/engine/engine';
import type { GenerationResult, GenerationStream } from '../../src/engine/types';
import { openSafetensors } from '../../src/formats/safetensors';
import { bytesSource } from '../../src/formats/sources';
import { urlFiles } from '../../src/model/files';
import { createReferenceModel } from '../../src/model/reference';
import { loadCanonicalWeights, safetensorsWeightReader } from '../../src/model/weights';
import { loadWasmModel } from '../../src/wasm/load';

export interface WasmState {
  done: boolean;
  error?: string;
  backend?: BackendChoice;
  /** engine mode: what each API check saw. */
  api?: {
    cachedTokens: number;
    continuationAgrees: boolean;
    stopFinish: string;
    stopText: string;
    seededTopKRepeats: boolean;
    seededLogitsRepeats: boolean;
    abortFinish: string;
    /** Two requests started together: each as it is alone (the queue runs them one after the other). */
    queuedAgree: boolean;
    /** The greedy run's usage: prompt, completion and total tokens. */
    usage: [number, number, number];
    chatContent: string;
    chatFinish: string;
  };
  greedy?: number[];
  /** Largest |log p_wasm − log p_reference| over the tokens with reference probability ≥ 1e-4, per position. */
  maxLogprobError?: number[];
  /** Whether each position's reference argmax is the WASM argmax. */
  argmaxAgrees?: boolean[];
  threads?: number;
  decodeTokensPerSecond?: number;
  /** webgpu mode: why auto would take WASM here (null: it would take WebGPU). */
  autoWasmReason?: WasmReason | null;
}

declare global {
  interface Window {
    __wasm?: WasmState;
  }
}

function logSoftmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(logits, (v) => v - lse);
}

async function collect(stream: GenerationStream): Promise<{ ids: number[]; text: string; result: GenerationResult }> {
  const ids: number[] = [];
  let text = '';
  for await (const d of stream) {
    ids.push(...d.tokenIds);
    text += d.text;
  }
  return { ids, text, result: await stream.result };
}

async function engineChecks(modelUrl: string, backend: BackendRequest | undefined, newTokens: number): Promise<WasmState> {
  // No kernel tuning: the GPU check is about the choice, and tuning on SwiftShader takes most of a minute.
  const engine = await createEngine(modelUrl, { backend, tune: false });
  try {
    const greedy = await collect(engine.generate([1], { temperature: 0, max_tokens: newTokens }));
    if (backend === 'webgpu') return { done: true, backend: engine.backend, greedy: greedy.ids };
    const prompt = engine.tokenizer.encode('Once upon a time');
    const first = await collect(engine.generate(prompt, { temperature: 0, max_tokens: 8 }));
    const again = await collect(engine.generate([...prompt, ...first.ids.slice(0, 4)], { temperature: 0, max_tokens: 4 }));
    const stop = await collect(engine.generate('Once upon a time', { temperature: 0, max_tokens: 40, stop: ['Lily'] }));
    const seeded = (extra: object) => collect(engine.generate(prompt, { temperature: 0.9, top_k: 20, seed: 7, max_tokens: 16, ...extra }));
    const [topK1, topK2] = [await seeded({}), await seeded({})];
    const [logits1, logits2] = [await seeded({ repetition_penalty: 1.2 }), await seeded({ repetition_penalty: 1.2 })];
    const controller = new AbortController();
    const aborted = engine.generate(prompt, { temperature: 0, max_tokens: 50, signal: controller.signal });
    for await (const _ of aborted) controller.abort();
    const [queuedA, queuedB] = await Promise.all([
      collect(engine.generate(prompt, { temperature: 0, max_tokens: 8 })),
      collect(engine.generate([1], { temperature: 0, max_tokens: 6 })),
    ]);
    const { usage } = greedy.result;
    const chat = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Tell me a story.' }], temperature: 0, max_tokens: 12 });
    return {
      done: true,
      backend: engine.backend,
      greedy: greedy.ids,
      api: {
        cachedTokens: again.result.usage.prompt_tokens_details.cached_tokens,
        continuationAgrees: JSON.stringify(again.ids) === JSON.stringify(first.ids.slice(4, 8)),
        stopFinish: stop.result.finishReason,
        stopText: stop.text,
        seededTopKRepeats: JSON.stringify(topK1.ids) === JSON.stringify(topK2.ids),
        seededLogitsRepeats: JSON.stringify(logits1.ids) === JSON.stringify(logits2.ids),
        abortFinish: (await aborted.result).finishReason,
        queuedAgree: JSON.stringify(queuedA.ids) === JSON.stringify(first.ids) && JSON.stringify(queuedB.ids) === JSON.stringify(greedy.ids.slice(0, 6)),
        usage: [usage.prompt_tokens, usage.completion_tokens, usage.total_tokens],
        chatContent: chat.choices[0].message.content,
        chatFinish: chat.choices[0].finish_reason,
      },
    };
  } finally {
    await engine.dispose();
  }
}

async function run(): Promise<WasmState> {
  const params = new URLSearchParams(location.search);
  const mode = params.get('mode') ?? 'model';
  const model = params.get('model') ?? 'stories260K';
  const promptIds = (params.get('prompt') ?? '1').split(',').map(Number);
  const newTokens = Number(params.get('n') ?? '200');
  const modelUrl = new URL(`/models/${model}/`, location.href).href;
  if (mode === 'engine') return engineChecks(modelUrl, undefined, newTokens);
  if (mode === 'webgpu') return { ...(await engineChecks(modelUrl, 'webgpu', newTokens)), autoWasmReason: await reasonForWasm() };
  const dtype = params.get('dtype');
  const { model: wasm, spec } = await loadWasmModel(urlFiles(modelUrl), { dtype: dtype === 'q8' || dtype === 'q4' ? dtype : undefined });
  try {
    const greedy: number[] = [];
    let next = await wasm.forward(promptIds);
    const t0 = performance.now();
    while (next.kind === 'token' && greedy.length < newTokens) {
      greedy.push(next.token);
      if (greedy.length < newTokens) next = await wasm.forward([next.token]);
    }
    const decodeTokensPerSecond = ((newTokens - 1) * 1000) / (performance.now() - t0);

    // The reference's distribution at each position of the golden continuation (the WASM cache rewound to 0).
    const bytes = await (await fetch(new URL('model.safetensors', modelUrl))).arrayBuffer();
    const weights = await loadCanonicalWeights(spec, safetensorsWeightReader(await openSafetensors(bytesSource(bytes, 'model.safetensors'))));
    const reference = createReferenceModel(spec, weights);
    const sequence = [...promptIds, ...greedy].slice(0, Number(params.get('positions') ?? '24'));
    wasm.rewind(0);
    const maxLogprobError: number[] = [];
    const argmaxAgrees: boolean[] = [];
    for (const [pos, id] of sequence.entries()) {
      const expected = logSoftmax(reference.forward(id, pos));
      const got = await wasm.forward([id], 'logits');
      if (got.kind !== 'logits') throw new Error('expected logits');
      let error = 0;
      let refBest = 0;
      let gotBest = 0;
      for (let v = 0; v < expected.length; v++) {
        if (expected[v] >= Math.log(1e-4)) error = Math.max(error, Math.abs(got.logits[v] - expected[v]));
        if (expected[v] > expected[refBest]) refBest = v;
        if (got.logits[v] > got.logits[gotBest]) gotBest = v;
      }
      maxLogprobError.push(error);
      argmaxAgrees.push(refBest === gotBest);
    }
    return { done: true, greedy, maxLogprobError, argmaxAgrees, threads: wasm.info.threads, decodeTokensPerSecond };
  } finally {
    wasm.destroy();
  }
}

window.__wasm = { done: false };
run().then(
  (state) => {
    window.__wasm = state;
    document.getElementById('out')!.textContent = JSON.stringify(state);
  },
  (e: unknown) => (window.__wasm = { done: true, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) }),
);
