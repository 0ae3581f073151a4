/** Checks the gelu kernel against its CPU reference on fewer rows than its tensors hold, and on huge inputs. */
import type { Gpu } from '../../gpu/device';
import type { CheckResult } from '../../selftest/compare';
import { checkRows, destroyAll, poisoned, randomInputs, readF32, rowsLabel, upload, type ElementwiseCase } from '../../selftest/harness';
import { createRng } from '../../util/random';
import { prepareGelu } from './gelu';
import { geluRef } from './reference';

export async function checkGelu(gpu: Gpu, c: ElementwiseCase, seed: number): Promise<CheckResult> {
  const rng = createRng(seed);
  const { maxRows, width: D } = c;
  const rows = c.rows ?? maxRows;
  const data = randomInputs(rng, maxRows * D, 3, c.extremes);
  const x = await upload(gpu, 'x', [maxRows, D], data);
  const out = await poisoned(gpu, 'out', [maxRows, D]);
  const op = await prepareGelu(gpu, { x, out });
  if (rows !== maxRows) op.set({ rows });
  const actual = await readF32(gpu, op, out);
  destroyAll(x, out);
  const name = `gelu ${rowsLabel(c)} D=${D}${c.extremes ? ' extremes' : ''}`;
  return checkRows(name, seed, actual, geluRef(data.subarray(0, rows * D)));
}
