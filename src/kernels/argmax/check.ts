/** Checks the argmax kernel against its CPU reference: random rows, planted ties, rows it must flag. */
import type { Gpu } from '../../gpu/device';
import type { CheckResult } from '../../selftest/compare';
import { destroyAll, poisoned, runAndRead, upload } from '../../selftest/harness';
import { createRng, randomNormal } from '../../util/random';
import { prepareArgmax } from './argmax';
import { argmaxRef } from './reference';

export interface ArgmaxCase {
  V: number;
}

/** What each row of an argmax check holds; the kernel reduces these rows and leaves one more untouched. */
const ARGMAX_ROWS = [
  'random',
  'tie at adjacent indices',
  'tie 256 apart',
  'tie at a random pair',
  '-Infinity but one',
  'one NaN',
  'one +Infinity',
  'all -Infinity',
] as const;

/**
 * argmax over rows of random logits, rows with the maximum planted at two indices (the lower must win), a
 * row of -Infinity with one finite value, and rows the kernel must flag as non-finite: one NaN, one
 * +Infinity (each at a random index, the other values normal), all -Infinity. Indices must match exactly:
 * nmse is 0 or Infinity.
 */
export async function checkArgmax(gpu: Gpu, c: ArgmaxCase, seed: number): Promise<CheckResult> {
  const rng = createRng(seed);
  const { V } = c;
  const rows = ARGMAX_ROWS.length;
  const maxRows = rows + 1;
  const data = randomNormal(rng, maxRows * V);
  const plantTie = (r: number, i: number, j: number) => {
    let max = -Infinity;
    for (let k = 0; k < V; k++) max = Math.max(max, data[r * V + k]);
    data[r * V + i] = data[r * V + j] = max + 1;
  };
  if (V >= 2) {
    const i = rng.int(V - 1);
    plantTie(1, i, i + 1);
    const k = V > 256 ? rng.int(V - 256) : 0;
    plantTie(2, k, Math.min(k + 256, V - 1));
    const a = rng.int(V);
    const b = (a + 1 + rng.int(V - 1)) % V;
    plantTie(3, a, b);
  }
  data.fill(-Infinity, 4 * V, 5 * V);
  data[4 * V + rng.int(V)] = rng.normal();
  data[5 * V + rng.int(V)] = NaN;
  data[6 * V + rng.int(V)] = Infinity;
  data.fill(-Infinity, 7 * V, 8 * V);

  const logits = await upload(gpu, 'logits', [maxRows, V], data);
  const out = await poisoned(gpu, 'out', [maxRows], 'u32');
  const op = await prepareArgmax(gpu, { logits, out, rows });
  const actual = await runAndRead(gpu, [op], out);
  destroyAll(logits, out);

  const expected = argmaxRef(data, rows, V);
  const name = `argmax rows=${rows}/${maxRows} V=${V}`;
  const exact = { name, seed, tolerance: 0, nmse: 0, maxAbsError: 0, worstIndex: -1, passed: true };
  for (let r = 0; r < rows; r++) {
    if (actual[r] !== expected[r]) {
      const got = actual[r] < V ? `${actual[r]} (value ${data[r * V + actual[r]]})` : `${actual[r]} (out of range)`;
      const detail = `row ${r} (${ARGMAX_ROWS[r]}) got index ${got}, expected ${expected[r]} (value ${data[r * V + expected[r]]})`;
      return { ...exact, name: `${name}: ${detail}`, nmse: Infinity, maxAbsError: Math.abs(actual[r] - expected[r]), worstIndex: r, passed: false };
    }
  }
  if (actual[rows] !== 0xffffffff) {
    return { ...exact, name: `${name}: wrote row ${rows}, past the last row`, nmse: Infinity, worstIndex: rows, passed: false };
  }
  return exact;
}
