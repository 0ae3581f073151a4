import type { Gpu } from '../../gpu/device';
import { prepareAttention } from './attention';
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
}

export const ATTENTION_TOLERANCE = 1e-6;

export async function checkAttention(gpu: Gpu, c: AttentionCase, seed: number): Promise<CheckResult> {
  const rng = createRng(seed);
  const { nHeads, nKvHeads, headDim: D, maxContext, T, pos } = c;
  const maxT = c.maxT ?? T;
  const scale = c.scale ?? 1 / Math.sqrt(D);
  const rowSize = nHeads * D;

  // Cache positions past the last one read (pos + T - 1) hold NaN, so reading past the causal limit fails.
  // q rows T.. hold real values: a stray write to out rows T.. would then be finite and caught below.
  const qData = randomNormal(rng, maxT * rowSize);
  const cacheData = () => {
    const data = new Float32Array(nKvHeads * maxContext * D).fill(NaN);
    for (let kvh = 0; kvh < nKvHeads; kvh++) data.set(randomNormal(rng, (pos + T) * D), kvh * maxContext * D);
    return data;
  };
  const kData = cacheData();
  const vData = cacheData();

  const q = await upload(gpu, 'q', [maxT, nHeads, D], qData);
  const kCache = await upload(gpu, 'kCache', [nKvHeads, maxContext, D], kData);
  const vCache = await upload(gpu, 'vCache', [nKvHeads, maxContext, D], vData);
  const out = await poisoned(gpu, 'out', [maxT, nHeads, D]);
  const step = c.preparedWith ?? { T, pos };
  const op = await prepareAttention(gpu, { q, kCache, vCache, out, nHeads, nKvHeads, headDim: D, maxContext, ...step, scale: c.scale });
  if (c.preparedWith) op.set({ T, pos });
  const actual = await runAndRead(gpu, [op], out);
  destroyAll(q, kCache, vCache, out);

  // Rows the call must not write are expected to still be NaN: map NaN to 0 there and anything else to an
  // infinite error, so the comparison points at the stray write.
  const valid = T * rowSize;
  const seen = Float32Array.from(actual, (v, i) => (i < valid ? v : Number.isNaN(v) ? 0 : Infinity));
  const expected = new Float32Array(maxT * rowSize);
  expected.set(attentionRef(qData, kData, vData, { nHeads, nKvHeads, headDim: D, maxContext, T, pos, scale }));

  const from = c.preparedWith ? ` (prepared T=${c.preparedWith.T} pos=${c.preparedWith.pos})` : '';
  const name =
    `attention T=${T}/${maxT} pos=${pos} heads=${nHeads}/${nKvHeads} headDim=${D} maxContext=${maxContext}` +
    `${c.scale !== undefined ? ` scale=${c.scale}` : ''}${from}`;
  return check(name, seed, ATTENTION_TOLERANCE, seen, expected);
}
