/** Checks the gelu kernel against its CPU reference on fewer rows than its tensors hold, and on huge inputs. */
import type { Gpu } from '../../gpu/device';
import type { CheckResult } from '../../selftest/compare';
import { checkRows, destroyAll, poisoned, randomInputs, readF32, rowsLabel, upload, type ElementwiseCase } from '../../selftest/harness';
import { createRng } from '../../util/random';
import { prepareGelu } from './gelu';
import { gatedGeluRef, geluRef } from './reference';

/** `gated`: GeGLU, inputs [gate | up] twice the output width; `erf`: the exact form instead of tanh's. */
export async function checkGelu(gpu: Gpu, c: ElementwiseCase, seed: number, { gated = false, erf = false } = {}): Promise<CheckResult> {
  const rng = createRng(seed);
  const { maxRows, width: D } = c;
  const rows = c.rows ?? maxRows;
  const inWidth = gated ? 2 * D : D;
  const data = randomInputs(rng, maxRows * inWidth, 3, c.extremes);
  const x = await upload(gpu, 'x', [maxRows, inWidth], data);
  const out = await poisoned(gpu, 'out', [maxRows, D]);
  const op = await prepareGelu(gpu, { x, out, gated, erf });
  if (rows !== maxRows) op.set({ rows });
  const actual = await readF32(gpu, op, out);
  destroyAll(x, out);
  const name = `gelu${erf ? ' erf' : ''}${gated ? ' gated' : ''} ${rowsLabel(c)} D=${D}${c.extremes ? ' extremes' : ''}`;
  const form = erf ? 'erf' : 'tanh';
  const expected = gated ? gatedGeluRef(data, rows, D, form) : geluRef(data.subarray(0, rows * D), form);
  return checkRows(name, seed, actual, expected);
}
