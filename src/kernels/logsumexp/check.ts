/** Checks the logsumexp kernel against its f64 CPU reference: random, large, ascending and masked rows. */
import type { Gpu } from '../../gpu/device';
import { check, type CheckResult } from '../../selftest/compare';
import { destroyAll, poisoned, runAndRead, upload } from '../../selftest/harness';
import { createRng, randomNormal } from '../../util/random';
import { prepareLogSumExp } from './logsumexp';
import { logSumExpRef } from './reference';

export interface LogSumExpCase {
  V: number;
}

/** What each row of a check holds; the kernel reduces these rows and leaves one more untouched. */
const ROWS = [
  'N(0, 1)',
  'N(1000, 30²): large logits, where exp without the max would overflow',
  'ascending: a new max at every element',
  'masked: -Infinity but a few',
  'one finite value',
  'all -Infinity',
] as const;

/**
 * Relative squared error pooled over the finite rows. The kernel's sums are f32: over 262,144 terms their
 * relative error stays near 1e-6, so an LSE within 1e-5 of its value (squared: 1e-10) is right. Pooled, the
 * row near 1000 dominates, so a small row could be off by ~1e-2 and pass this: the per-row check that the
 * probabilities sum to 1 within 1e-4 (an LSE within 1e-4 of its value) is what guards each row.
 */
export const LOGSUMEXP_TOLERANCE = 1e-10;

export async function checkLogSumExp(gpu: Gpu, c: LogSumExpCase, seed: number): Promise<CheckResult> {
  const rng = createRng(seed);
  const { V } = c;
  const rows = ROWS.length;
  const maxRows = rows + 1;
  const data = randomNormal(rng, maxRows * V);
  for (let j = 0; j < V; j++) {
    data[V + j] = 1000 + 30 * data[V + j];
    data[2 * V + j] = -5 + (10 * j) / V + 1e-3 * data[2 * V + j];
  }
  data.fill(-Infinity, 3 * V, 6 * V);
  for (let i = 0; i < Math.min(5, V); i++) data[3 * V + rng.int(V)] = rng.normal();
  data[4 * V + rng.int(V)] = 3 * rng.normal();

  const logits = await upload(gpu, 'logits', [maxRows, V], data);
  const out = await poisoned(gpu, 'out', [maxRows]);
  const op = await prepareLogSumExp(gpu, { logits, out, rows });
  const actual = await runAndRead(gpu, [op], out);
  destroyAll(logits, out);

  const expected = logSumExpRef(data, rows, V);
  const name = `logsumexp rows=${rows}/${maxRows} V=${V}`;
  const finite = ROWS.map((_, r) => r).filter((r) => r !== 5);
  const result = check(name, seed, LOGSUMEXP_TOLERANCE, finite.map((r) => actual[r]), finite.map((r) => expected[r]));
  if (actual[5] !== -Infinity) return { ...result, name: `${name}: the all -Infinity row gave ${actual[5]}, not -Infinity`, nmse: Infinity, worstIndex: 5, passed: false };
  // What logprobs rely on: the probabilities it gives sum to 1.
  for (const r of finite) {
    let total = 0;
    for (let j = 0; j < V; j++) if (data[r * V + j] > -Infinity) total += Math.exp(data[r * V + j] - actual[r]);
    if (!(Math.abs(total - 1) <= 1e-4)) return { ...result, name: `${name}: row ${r} (${ROWS[r]}): Σ exp(x − lse) = ${total}, not 1 within 1e-4`, passed: false };
  }
  if (!Number.isNaN(actual[rows])) return { ...result, name: `${name}: wrote row ${rows}, past the last row`, nmse: Infinity, worstIndex: rows, passed: false };
  return result;
}
