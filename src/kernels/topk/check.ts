/**
 * top-k against the CPU reference: values (bit for bit) and indices must match exactly, so nmse is 0 or
 * Infinity, as for argmax. Outputs and the scratch buffer start poisoned: values NaN, indices and scratch
 * 0xffffffff (a scratch entry that stage 2 read without stage 1 writing it would rank first).
 */
import type { Gpu } from '../../gpu/device';
import { runDispatches } from '../../gpu/dispatch';
import { readTensor } from '../../gpu/tensor';
import { prepareTopK, TOPK_BLOCK, topKScratchShape } from './topk';
import { topKRef } from './reference';
import type { CheckResult } from '../../selftest/compare';
import { destroyAll, poisoned, upload } from '../../selftest/harness';
import { createRng, randomNormal, type Rng } from '../../util/random';

/**
 * random: normal logits. ties: rounded to one decimal, so most values occur many times (and -0 next to +0).
 * ascending: sorted, so every logit beats the best so far (the worst case for the kernel's filtering).
 * sparse: -Infinity but for k/2 finite values and a few NaN (which rank first), so -Infinity fills the
 *   rest of the top k.
 * nan: NaN but for k/3 finite values and k/3 -Infinity, so NaNs fill the top k (ties by index).
 * late: the k-1 best at the start and the k-th at the end of the first block, which the kernel reaches
 *   after its first merge: it must still beat the k-th best found so far, not just the (k-1)-th.
 */
export type TopKData = 'random' | 'ties' | 'ascending' | 'sparse' | 'nan' | 'late';

export interface TopKCase {
  V: number;
  k: number;
  /** Entries values/indices hold (default k); with more, k is chosen by `set({ k })` after prepare. */
  capacity?: number;
  data: TopKData;
}

function scatter(rng: Rng, row: Float32Array, count: number, value: () => number): void {
  for (let n = 0; n < count; n++) row[rng.int(row.length)] = value();
}

function makeLogits(rng: Rng, V: number, k: number, data: TopKData): Float32Array {
  switch (data) {
    case 'random':
      return randomNormal(rng, V, 3);
    case 'ties':
      return randomNormal(rng, V, 2).map((x) => Math.round(x * 10) / 10);
    case 'ascending':
      return randomNormal(rng, V).sort();
    case 'sparse': {
      const row = new Float32Array(V).fill(-Infinity);
      scatter(rng, row, Math.floor(k / 2), () => rng.normal());
      scatter(rng, row, 3, () => NaN);
      return row;
    }
    case 'nan': {
      const row = new Float32Array(V).fill(NaN);
      scatter(rng, row, Math.floor(k / 3), () => rng.normal());
      scatter(rng, row, Math.floor(k / 3), () => -Infinity);
      return row;
    }
    case 'late': {
      const row = randomNormal(rng, V);
      for (let i = 0; i < k - 1; i++) row[i] = 100 + rng.normal();
      row[Math.min(V, TOPK_BLOCK) - 1] = 50;
      return row;
    }
  }
}

export async function checkTopK(gpu: Gpu, c: TopKCase, seed: number): Promise<CheckResult> {
  const rng = createRng(seed);
  const { V, k } = c;
  const capacity = c.capacity ?? k;
  const data = makeLogits(rng, V, k, c.data);
  const logits = await upload(gpu, 'logits', [V], data);
  const values = await poisoned(gpu, 'values', [capacity]);
  const indices = await poisoned(gpu, 'indices', [capacity], 'u32');
  const scratch = await poisoned(gpu, 'scratch', topKScratchShape(V, capacity), 'u32');
  const op = await prepareTopK(gpu, { logits, values, indices, scratch });
  if (k !== capacity) op.set({ k });
  runDispatches(gpu, op.stages);
  const gotValues = new Uint32Array((await readTensor(gpu, values)).buffer, 0, capacity);
  const gotIndices = await readTensor(gpu, indices);
  destroyAll(logits, values, indices, scratch);

  const expected = topKRef(data, k);
  const expectedValues = new Uint32Array(expected.values.buffer);
  const name = `topk V=${V} k=${k}${capacity !== k ? `/${capacity}` : ''} ${c.data}`;
  const exact = { name, seed, tolerance: 0, nmse: 0, maxAbsError: 0, worstIndex: -1, passed: true };
  const fail = (r: number, detail: string): CheckResult => ({ ...exact, name: `${name}: ${detail}`, nmse: Infinity, worstIndex: r, passed: false });
  const show = (bits: number) => new Float32Array(new Uint32Array([bits]).buffer)[0];
  for (let r = 0; r < k; r++) {
    if (gotIndices[r] !== expected.indices[r] || gotValues[r] !== expectedValues[r]) {
      return fail(r, `rank ${r} got index ${gotIndices[r]} value ${show(gotValues[r])}, expected index ${expected.indices[r]} value ${expected.values[r]}`);
    }
  }
  for (let r = k; r < capacity; r++) {
    if (!Number.isNaN(show(gotValues[r])) || gotIndices[r] !== 0xffffffff) return fail(r, `wrote rank ${r}, past k`);
  }
  return exact;
}
