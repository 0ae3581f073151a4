import type { Gpu } from '../../gpu/device';
import { toF16 } from '../../gpu/f16';
import { uploadTensor } from '../../gpu/tensor';
import { attentionPartialsShape, prepareAttention, type AttentionDecodePath } from './attention';
import type { KvFormat } from './kv-format';
import { attentionRef } from './reference';
import { check, type CheckResult } from '../../selftest/compare';
import { destroyAll, poisoned, runAndRead, upload } from '../../selftest/harness';
import { createRng, randomNormal } from '../../util/random';

export interface AttentionCase {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  maxContext: number;
  T: number;
  pos: number;
  /** Rows of q and out (default T); rows T.. of out must keep their NaN poison. */
  maxT?: number;
  scale?: number;
  /** Prepare with this step, then `set({ T, pos })` before running: the per-chunk/per-token path. */
  preparedWith?: { T: number; pos: number };
  /** How the cache is stored and read (default f32); f16 caches are compared with the f32 reference. */
  kv?: KvFormat;
  /** Decode split size floor, to force several splits at small contexts. */
  minSplit?: number;
  /** Pass a scratch for the splits' partial results, as a model does (shared by its layers). */
  sharedPartials?: boolean;
  /** Sliding window (0 or absent = none). */
  window?: number;
  /** Which decode kernel runs a one-row call (default: the device's). */
  decodePath?: AttentionDecodePath;
  /** Most query rows per workgroup, as a plan of short chunks passes the GQA group. */
  maxRows?: number;
}

export const ATTENTION_TOLERANCE = 1e-6;
/**
 * An f16 cache rounds every key and value by up to 2⁻¹¹ relative (NMSE ~1e-7 on the values, more through the
 * scores' exponentials); the f32 reference sees the unrounded ones.
 */
export const ATTENTION_F16_KV_TOLERANCE = 1e-5;

export async function checkAttention(gpu: Gpu, c: AttentionCase, seed: number): Promise<CheckResult> {
  const rng = createRng(seed);
  const { nHeads, nKvHeads, headDim: D, maxContext, T, pos } = c;
  const maxT = c.maxT ?? T;
  const scale = c.scale ?? 1 / Math.sqrt(D);
  const rowSize = nHeads * D;

  // Cache positions past the last one read (pos + T - 1) hold NaN, so reading past the causal limit fails; so
  // do those before the first row's window, which no query sees.
  // q rows T.. hold real values: a stray write to out rows T.. would then be finite and caught below.
  const qData = randomNormal(rng, maxT * rowSize);
  const window = c.window ?? 0;
  const firstSeen = window > 0 ? Math.max(0, pos + 1 - window) : 0;
  const cacheData = () => {
    const data = new Float32Array(nKvHeads * maxContext * D).fill(NaN);
    for (let kvh = 0; kvh < nKvHeads; kvh++) {
      data.set(randomNormal(rng, (pos + T - firstSeen) * D), (kvh * maxContext + firstSeen) * D);
    }
    return data;
  };
  const kData = cacheData();
  const vData = cacheData();

  const kv = c.kv ?? 'f32';
  const cacheShape = [nKvHeads, maxContext, D];
  // NaN stays NaN in f16, so the poison past the causal limit survives the rounding.
  const uploadCache = (label: string, data: Float32Array) =>
    kv === 'f32' ? upload(gpu, label, cacheShape, data) : uploadTensor(gpu, label, 'f16', cacheShape, toF16(data));
  const q = await upload(gpu, 'q', [maxT, nHeads, D], qData);
  const kCache = await uploadCache('kCache', kData);
  const vCache = await uploadCache('vCache', vData);
  const out = await poisoned(gpu, 'out', [maxT, nHeads, D]);
  const step = c.preparedWith ?? { T, pos };
  // A shared scratch as a model passes it (poisoned: the launch must write before it reads).
  const partials = c.sharedPartials ? await poisoned(gpu, 'partials', attentionPartialsShape(nHeads, D)) : undefined;
  const op = await prepareAttention(gpu, {
    q, kCache, vCache, out, nHeads, nKvHeads, headDim: D, maxContext, ...step, scale: c.scale, kvFormat: c.kv, minSplit: c.minSplit, window: c.window, partials, decodePath: c.decodePath, maxRows: c.maxRows,
  });
  if (c.preparedWith) op.set({ T, pos });
  const actual = await runAndRead(gpu, op.dispatches, out);
  op.dispose();
  destroyAll(q, kCache, vCache, out, partials);

  // Rows the call must not write are expected to still be NaN: map NaN to 0 there and anything else to an
  // infinite error, so the comparison points at the stray write.
  const valid = T * rowSize;
  const seen = Float32Array.from(actual, (v, i) => (i < valid ? v : Number.isNaN(v) ? 0 : Infinity));
  const expected = new Float32Array(maxT * rowSize);
  expected.set(attentionRef(qData, kData, vData, { nHeads, nKvHeads, headDim: D, maxContext, T, pos, scale, window }));

  const from = c.preparedWith ? ` (prepared T=${c.preparedWith.T} pos=${c.preparedWith.pos})` : '';
  const name =
    `attention T=${T}/${maxT} pos=${pos} heads=${nHeads}/${nKvHeads} headDim=${D} maxContext=${maxContext}` +
    `${c.scale !== undefined ? ` scale=${c.scale}` : ''}${from} kv=${kv}${partials ? ' shared partials' : ''}${c.minSplit ? ` minSplit=${c.minSplit}` : ''}${window ? ` window=${window}` : ''}${c.decodePath ? ` decode=${c.decodePath}` : ''}${c.maxRows ? ` maxRows=${c.maxRows}` : ''}`;
  return check(name, seed, kv === 'f32' ? ATTENTION_TOLERANCE : ATTENTION_F16_KV_TOLERANCE, seen, expected);
}
