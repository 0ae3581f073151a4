import type { Gpu } from '../../gpu/device';
import { runDispatches } from '../../gpu/dispatch';
import { numel, writeTensor } from '../../gpu/tensor';
import type { KvFormat } from '../attention/kv-format';
import { ropeInvFreq, ropeTable, type RopeScaling } from '../../model/rope-table';
import { prepareRope } from './rope';
import { ropeRef } from './reference';
import { check, type CheckResult } from '../../selftest/compare';
import { destroyAll, poisoned, readValues, upload } from '../../selftest/harness';
import { createRng, randomNormal } from '../../util/random';

export interface RopeCase {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  rotaryDim: number;
  maxContext: number;
  qkNorm?: boolean;
  /** Default 1e-6 (Qwen3's), too small to show a missing eps. */
  normEps?: number;
  theta?: number;
  scaling?: RopeScaling;
  /** Chunks run in order through one prepared dispatch, with `set({ T, pos })` between them. */
  steps: { T: number; pos: number }[];
  /** How the KV cache is stored and written (default f32). */
  kv?: KvFormat;
}

export const ROPE_TOLERANCE = 1e-6;
/** An f16 cache rounds each key and value by up to 2⁻¹¹ relative (2⁻¹⁰ if the device truncates): NMSE ≤ 1e-6. */
export const ROPE_F16_KV_TOLERANCE = 1e-6;

/**
 * Like `check`, where NaN in `expected` marks entries the kernel must not write: those must still hold
 * the NaN poison, and the rest are compared by NMSE. `worstIndex` indexes the full arrays.
 */
export function checkWithUntouched(
  name: string,
  seed: number,
  tolerance: number,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
): CheckResult {
  if (actual.length !== expected.length) {
    throw new Error(`length mismatch: got ${actual.length} values, expected ${expected.length}`);
  }
  const index: number[] = [];
  let clobbered = 0;
  let firstClobbered = -1;
  for (let i = 0; i < expected.length; i++) {
    if (!Number.isNaN(expected[i])) index.push(i);
    else if (!Number.isNaN(actual[i]) && clobbered++ === 0) firstClobbered = i;
  }
  const r = check(name, seed, tolerance, index.map((i) => actual[i]), index.map((i) => expected[i]));
  const result = { ...r, worstIndex: index[r.worstIndex] ?? -1 };
  if (clobbered === 0) return result;
  return {
    ...result,
    name: `${name}: ${clobbered} entries outside the written range were overwritten (first at index ${firstClobbered})`,
    passed: false,
  };
}

export async function checkRope(gpu: Gpu, c: RopeCase, seed: number): Promise<CheckResult> {
  const rng = createRng(seed);
  const { nHeads, nKvHeads, headDim, rotaryDim, maxContext } = c;
  const maxT = Math.max(...c.steps.map((s) => s.T));
  const width = (nHeads + 2 * nKvHeads) * headDim;
  const cacheShape = [nKvHeads, maxContext, headDim];
  const frequencies = { rotaryDim, theta: c.theta ?? 10000, scaling: c.scaling };
  const invFreq = ropeInvFreq(frequencies);
  const table =
    rotaryDim > 0 ? await upload(gpu, 'table', [maxContext, rotaryDim / 2, 2], ropeTable(frequencies, maxContext)) : undefined;
  const normData = c.qkNorm ? [randomNormal(rng, headDim), randomNormal(rng, headDim)] : undefined;
  const [qNorm, kNorm] = normData ? await Promise.all(normData.map((d, i) => upload(gpu, `norm${i}`, [headDim], d))) : [];
  const normEps = c.qkNorm ? (c.normEps ?? 1e-6) : undefined;
  const qkv = await upload(gpu, 'qkv', [maxT, width], new Float32Array(maxT * width));
  const q = await poisoned(gpu, 'q', [maxT, nHeads, headDim]);
  const kv = c.kv ?? 'f32';
  const cacheDtype = kv === 'f32' ? 'f32' : 'f16';
  const kCache = await poisoned(gpu, 'kCache', cacheShape, cacheDtype);
  const vCache = await poisoned(gpu, 'vCache', cacheShape, cacheDtype);

  // The reference starts from the same NaN poison, so entries no step writes are expected to stay NaN.
  const expected = [q, kCache, vCache].map((t) => new Float32Array(numel(t.shape)).fill(NaN));
  const dims = { nHeads, nKvHeads, headDim, rotaryDim, maxContext, normEps };
  const op = await prepareRope(gpu, { ...dims, qkv, q, kCache, vCache, table, qNorm, kNorm, kvFormat: c.kv, ...c.steps[0] });
  for (const step of c.steps) {
    op.set(step);
    const data = randomNormal(rng, maxT * width);
    writeTensor(gpu, qkv, data);
    runDispatches(gpu, [op]);
    const args = { ...dims, ...step, invFreq, qkv: data, qNorm: normData?.[0], kNorm: normData?.[1] };
    ropeRef(args, expected[0], expected[1], expected[2]);
  }
  const actual = [await readValues(gpu, q), await readValues(gpu, kCache), await readValues(gpu, vCache)];
  destroyAll(table, qNorm, kNorm, qkv, q, kCache, vCache);

  const name =
    `rope heads ${nHeads}/${nKvHeads}×${headDim} rotary ${rotaryDim}${c.qkNorm ? ` +qk-norm eps ${normEps}` : ''} ` +
    `ctx ${maxContext} steps ${c.steps.map((s) => `${s.T}@${s.pos}`).join(',')} kv ${kv}`;
  const results = ['q', 'kCache', 'vCache'].map((what, i) =>
    checkWithUntouched(`${name} ${what}`, seed, i > 0 && kv !== 'f32' ? ROPE_F16_KV_TOLERANCE : ROPE_TOLERANCE, actual[i], expected[i]),
  );
  return results.find((r) => !r.passed) ?? results.reduce((a, b) => (b.nmse > a.nmse ? b : a));
}
