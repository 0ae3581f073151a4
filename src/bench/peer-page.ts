/**
 * The page behind `npm run bench:peer` (src/bench/peer.ts): runs this engine and wllama (llama.cpp in
 * WebAssembly, WebGPU when it can) on the same stories260K weights in the same Chromium. The GGUF for wllama is
 * exported here from the model's safetensors (src/bench/gguf-export.ts), so nothing comes from the network.
 * The result lands in window.__peerResult.
 */
import { Wllama, type LoadModelParams, type RawCompletionParams, type RawCompletionResponse } from '@wllama/wllama';
import { createEngine } from '../engine/engine';
import { llamaToGguf } from '../formats/gguf-export';
import { openSafetensors } from '../formats/safetensors';
import { bytesSource } from '../formats/sources';
import { parseModelConfig } from '../model/config';
import { urlFiles } from '../model/files';

export interface PeerRun {
  backend: string;
  promptTokens: number;
  generatedTokens: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  text: string;
  notes: string[];
  /** wllama only: llama.cpp's own log of the run that produced the numbers. */
  nativeLog?: string[];
}

export interface PeerPageResult {
  ours: PeerRun | null;
  /** This engine on its CPU backend (llama.cpp in WebAssembly through wllama, our sampler and KV reuse on top). */
  oursWasm: PeerRun | null;
  theirs: PeerRun | null;
  /** Why a side did not run, if it did not. */
  errors: string[];
  agreement: { comparedChars: number; matchingPrefixChars: number; identical: boolean } | null;
  ggufBytes: number;
}

declare global {
  interface Window {
    __peerResult?: PeerPageResult;
  }
}

const MODEL = 'stories260K';
export const PEER_PROMPT =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. ' +
  'One day, she saw a big red ball under a tree. She ran to the ball and picked it up. Her mom said, "Lily, ' +
  'be careful!" Lily smiled and threw the ball to her dog. The dog was very happy and';
const DECODE_TOKENS = 64;

const log = (s: string): void => {
  const el = document.getElementById('log');
  if (el) el.textContent += `${s}\n`;
  console.log(s);
};

const message = (e: unknown): string => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

async function runOurs(modelUrl: string, backend: 'webgpu' | 'wasm'): Promise<{ run: PeerRun; promptIds: number[] }> {
  const engine = await createEngine(urlFiles(modelUrl), { dtype: 'f32', backend });
  try {
    const promptIds = engine.tokenizer.encode(PEER_PROMPT);
    const once = async (ids: readonly number[], maxTokens: number) => {
      const stream = engine.generate(ids, { temperature: 0, max_tokens: maxTokens });
      const out: number[] = [];
      for await (const d of stream) out.push(...d.tokenIds);
      return { out, result: await stream.result };
    };
    // Warm-up (pipelines, tuning), then a one-token request on another prompt so the timed one reuses no cache.
    await once(promptIds, 8);
    await once([promptIds[promptIds.length - 1]], 1);
    const { out, result } = await once(promptIds, DECODE_TOKENS);
    const promptText = engine.tokenizer.decode(promptIds, { skipSpecialTokens: true });
    const text = engine.tokenizer.decode([...promptIds, ...out], { skipSpecialTokens: true }).slice(promptText.length);
    const notes = [`${backend === 'wasm' ? 'threads' : 'adapter'}: ${engine.backend.device}`, `cached prompt tokens: ${result.usage.prompt_tokens_details.cached_tokens}`];
    return {
      promptIds,
      run: {
        backend: backend === 'wasm' ? `webgpu-llm CPU f32 (llama.cpp in ${engine.backend.device})` : `webgpu-llm WebGPU f32 (${engine.backend.device})`,
        promptTokens: result.usage.prompt_tokens,
        generatedTokens: result.usage.completion_tokens,
        prefillTokensPerSecond: result.timings.prefill_tokens_per_second,
        decodeTokensPerSecond: result.timings.decode_tokens_per_second,
        text,
        notes,
      },
    };
  } finally {
    await engine.dispose();
  }
}

async function exportGguf(modelUrl: string): Promise<Blob> {
  const get = async (file: string): Promise<Response> => {
    const r = await fetch(new URL(file, modelUrl));
    if (!r.ok) throw new Error(`${file}: HTTP ${r.status}`);
    return r;
  };
  const spec = parseModelConfig(await (await get('config.json')).json());
  const weights = await openSafetensors(bytesSource(await (await get('model.safetensors')).arrayBuffer(), 'model.safetensors'));
  const tokenizer: unknown = await (await get('tokenizer.json')).json();
  return llamaToGguf(spec, weights, tokenizer, { name: MODEL });
}

async function runTheirs(gguf: Blob, promptTokens: number): Promise<PeerRun> {
  const nativeLog: string[] = [];
  const keep = (...args: unknown[]): void => {
    nativeLog.push(args.map(String).join(' '));
  };
  const wasmUrl = new URL('/node_modules/@wllama/wllama/esm/wasm/wllama.wasm', location.href).href;
  const attempts: Array<{ label: string; params: LoadModelParams }> = [
    { label: 'WebGPU (n_gpu_layers 999)', params: { n_ctx: 512, n_gpu_layers: 999 } },
    { label: 'CPU wasm (n_gpu_layers 0)', params: { n_ctx: 512, n_gpu_layers: 0 } },
  ];
  const notes: string[] = [];
  for (const attempt of attempts) {
    const wllama = new Wllama({ default: wasmUrl }, { logger: { debug: keep, log: keep, warn: keep, error: keep } });
    nativeLog.length = 0;
    try {
      await wllama.loadModel([gguf], attempt.params);
      const complete = async (prompt: string, maxTokens: number): Promise<RawCompletionResponse> => {
        // cache_prompt is llama-server's; wllama forwards it (it is not in RawCompletionParams' type).
        const params: RawCompletionParams & { stream?: false } = Object.assign(
          { prompt, max_tokens: maxTokens, temperature: 0, temp: 0, top_k: 1, seed: 1 },
          { cache_prompt: false },
        );
        return wllama.createCompletion(params);
      };
      await complete(PEER_PROMPT, 8); // warm-up
      await complete('The', 1); // another prompt, so no prefix is reused
      const res = await complete(PEER_PROMPT, DECODE_TOKENS);
      const t = res.timings;
      if (!t) throw new Error('wllama returned no timings');
      const interesting = nativeLog.filter((l) => /webgpu|offload|backend|device|gpu|thread|buffer size|CPU|f16|compute/i.test(l)).slice(0, 40);
      notes.push(
        `isSupportWebGPU(): ${wllama.isSupportWebGPU()}`,
        `multithread: ${wllama.isMultithread()} (${wllama.getNumThreads()} threads; crossOriginIsolated ${self.crossOriginIsolated})`,
        `native log lines: ${nativeLog.length}`,
        `prompt_n ${t.prompt_n} (ours ${promptTokens}), cache_n ${t.cache_n}, predicted_n ${t.predicted_n}`,
        ...interesting.map((l) => `log: ${l}`),
      );
      // What ran, from llama.cpp's log: asking for GPU layers is not proof that a WebGPU device took them.
      const gpuBuffers = nativeLog.filter((l) => /buffer size/i.test(l) && /webgpu/i.test(l));
      const ranOn = gpuBuffers.length
        ? `WebGPU (${gpuBuffers.length} WebGPU buffers)`
        : `CPU wasm (${attempt.params.n_gpu_layers ? `asked n_gpu_layers ${attempt.params.n_gpu_layers}, but` : ''} no WebGPU buffer in llama.cpp's log)`;
      const log = [...nativeLog];
      const threads = wllama.isMultithread() ? `${wllama.getNumThreads()} threads` : '1 thread';
      await wllama.exit();
      return {
        backend: `wllama ${ranOn}, ${threads}`,
        nativeLog: log,
        promptTokens: t.prompt_n,
        generatedTokens: t.predicted_n,
        prefillTokensPerSecond: t.prompt_per_second,
        decodeTokensPerSecond: t.predicted_per_second,
        text: res.choices[0]?.text ?? '',
        notes,
      };
    } catch (e) {
      const tail = nativeLog.slice(-8).map((l) => `log: ${l}`);
      notes.push(`${attempt.label} failed: ${message(e)}`, ...tail);
      log(`wllama ${attempt.label} failed: ${message(e)}`);
      try {
        await wllama.exit();
      } catch {
        // already gone
      }
    }
  }
  throw new Error(notes.join('\n'));
}

function agreement(a: string, b: string): PeerPageResult['agreement'] {
  const x = a.trimStart();
  const y = b.trimStart();
  const n = Math.min(x.length, y.length);
  let i = 0;
  while (i < n && x[i] === y[i]) i++;
  return { comparedChars: n, matchingPrefixChars: i, identical: x === y };
}

async function main(): Promise<PeerPageResult> {
  const modelUrl = new URL(`/models/${MODEL}/`, location.href).href;
  const result: PeerPageResult = { ours: null, oursWasm: null, theirs: null, errors: [], agreement: null, ggufBytes: 0 };
  let promptTokens = 0;
  try {
    const o = await runOurs(modelUrl, 'webgpu');
    result.ours = o.run;
    promptTokens = o.promptIds.length;
    log(`ours: ${JSON.stringify(o.run)}`);
  } catch (e) {
    result.errors.push(`webgpu-llm: ${message(e)}`);
  }
  try {
    result.oursWasm = (await runOurs(modelUrl, 'wasm')).run;
    log(`ours (CPU): ${JSON.stringify(result.oursWasm)}`);
  } catch (e) {
    result.errors.push(`webgpu-llm CPU: ${message(e)}`);
  }
  let gguf: Blob | null = null;
  try {
    gguf = await exportGguf(modelUrl);
    result.ggufBytes = gguf.size;
  } catch (e) {
    result.errors.push(`GGUF export: ${message(e)}`);
  }
  if (gguf) {
    try {
      result.theirs = await runTheirs(gguf, promptTokens);
      log(`theirs: ${JSON.stringify(result.theirs)}`);
    } catch (e) {
      result.errors.push(`wllama: ${message(e)}`);
    }
  }
  if (result.ours && result.theirs) result.agreement = agreement(result.ours.text, result.theirs.text);
  return result;
}

main()
  .catch((e: unknown): PeerPageResult => ({ ours: null, oursWasm: null, theirs: null, errors: [message(e)], agreement: null, ggufBytes: 0 }))
  .then((r) => {
    window.__peerResult = r;
  });
