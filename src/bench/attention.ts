/**
 * The attention section of `npm run bench:kernels`: decode at contexts 256 / 2048 / 8192 and a 512-token
 * prefill at 1B-model shapes (32 query heads, 4 or 8 KV heads, head_dim 64). Each case reports the K/V bytes
 * the step must read (per token for decode, the whole cache for prefill) and that rate as a share of the copy
 * bandwidth measured in the same run, since software adapters are bound by instructions, not memory.
 */
import type { Gpu } from '../gpu/device';
import { toF16 } from '../gpu/f16';
import { createTensor, uploadTensor, type Tensor } from '../gpu/tensor';
import { prepareAttention } from '../kernels/attention/attention';
import type { KvDtype } from '../kernels/attention/kv-format';
import { createRng, randomNormal } from '../util/random';

export interface AttentionBenchCase {
  /** Which model the head layout comes from. */
  model: string;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** Query rows: 1 for decode, the prompt length for prefill. */
  T: number;
  /** Keys each query row ends at: decode's position + 1, or T for a prefill from an empty cache. */
  context: number;
  /** Takes seconds per run on a software adapter: only with --all. */
  slow?: boolean;
}

export interface AttentionBenchResult extends AttentionBenchCase {
  kind: 'decode' | 'prefill';
  kvDtype: string;
  /** The launches that ran, by kernel name ('attention decode' is the subgroup decode kernel). */
  kernels: string;
  runs: number;
  wallMs: number;
  gpuMs?: number;
  /** K and V bytes the step reads at least once (the cache positions 0..context−1 of every KV head). */
  kvBytes: number;
  gbps: number;
  /** gbps as a share of the copy bandwidth measured in the same run. */
  copyPercent: number;
}

/** Something `timeLaunches` can encode: a prepared kernel, or attention's pair of launches. */
export interface Encodable {
  encode(pass: GPUComputePassEncoder): void;
}

export type TimeLaunches = (gpu: Gpu, launches: Encodable[], runs: number) => Promise<{ runs: number; wallMs: number; gpuMs?: number }>;

const TINYLLAMA = { model: 'TinyLlama-1.1B', nHeads: 32, nKvHeads: 4, headDim: 64 };
const LLAMA_1B = { model: 'Llama-3.2-1B', nHeads: 32, nKvHeads: 8, headDim: 64 };

export const ATTENTION_CASES: AttentionBenchCase[] = [TINYLLAMA, LLAMA_1B].flatMap((m) => [
  { ...m, T: 1, context: 256 },
  { ...m, T: 1, context: 2048 },
  { ...m, T: 1, context: 8192 },
  { ...m, T: 512, context: 512, slow: true },
]);

export function attentionCaseName(c: AttentionBenchCase): string {
  return `${c.T === 1 ? `decode ctx ${c.context}` : `prefill ${c.T}`} ${c.model} ${c.nHeads}/${c.nKvHeads}x${c.headDim}`;
}

export async function benchAttention(
  gpu: Gpu,
  c: AttentionBenchCase,
  kvDtype: KvDtype,
  copyGBps: number,
  runs: number,
  time: TimeLaunches,
): Promise<AttentionBenchResult> {
  const rng = createRng(2);
  const { nHeads, nKvHeads, headDim, T, context } = c;
  const maxContext = context;
  const cacheShape = [nKvHeads, maxContext, headDim];
  const tensors: Tensor[] = [];
  const keep = (t: Tensor) => (tensors.push(t), t);
  const q = keep(await uploadTensor(gpu, 'q', 'f32', [T, nHeads, headDim], randomNormal(rng, T * nHeads * headDim)));
  const cache = async (label: string) => {
    const data = randomNormal(rng, nKvHeads * maxContext * headDim);
    return keep(kvDtype === 'f32' ? await uploadTensor(gpu, label, 'f32', cacheShape, data) : await uploadTensor(gpu, label, 'f16', cacheShape, toF16(data)));
  };
  const kCache = await cache('kCache');
  const vCache = await cache('vCache');
  const out = keep(await createTensor(gpu, 'out', 'f32', [T, nHeads, headDim]));
  const op = await prepareAttention(gpu, { q, kCache, vCache, out, nHeads, nKvHeads, headDim, maxContext, T, pos: context - T });
  try {
    const timing = await time(gpu, [op], runs);
    const kvBytes = 2 * nKvHeads * context * headDim * (kvDtype === 'f32' ? 4 : 2);
    const gbps = kvBytes / ((timing.gpuMs ?? timing.wallMs) * 1e6);
    const kernels = op.dispatches.map((d) => d.name).join(' + ');
    return { ...c, kind: T === 1 ? 'decode' : 'prefill', kvDtype, kernels, ...timing, kvBytes, gbps, copyPercent: (100 * gbps) / copyGBps };
  } finally {
    op.dispose();
    for (const t of tensors) t.buffer.destroy();
  }
}

export function attentionTable(results: AttentionBenchResult[]): string[][] {
  return [
    ['attention', 'KV', 'kernels', 'runs', 'wall ms', 'gpu ms', 'K/V MB read', 'GB/s', '% of copy'],
    ...results.map((r) => [
      attentionCaseName(r),
      r.kvDtype,
      r.kernels,
      String(r.runs),
      r.wallMs.toFixed(3),
      r.gpuMs === undefined ? '-' : r.gpuMs.toFixed(3),
      (r.kvBytes / 1e6).toFixed(2),
      r.gbps.toPrecision(3),
      r.copyPercent.toFixed(1),
    ]),
  ];
}
