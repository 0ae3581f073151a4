/**
 * Checks for the element-wise and row-wise kernels (silu_mul, gelu, add, embedding, argmax, softmax)
 * against the CPU references. Each runs the kernel on fewer rows than its tensors hold (set with
 * `set({ rows })` after prepare) where the case asks, and fails if a row past `rows` was written.
 */
import type { Gpu } from '../gpu/device';
import type { KernelDispatch } from '../gpu/dispatch';
import { uploadTensor, type Tensor } from '../gpu/tensor';
import { prepareAdd } from '../ops/add';
import { prepareArgmax } from '../ops/argmax';
import { prepareEmbedding } from '../ops/embedding';
import { prepareGelu } from '../ops/gelu';
import { prepareSiluMul } from '../ops/silu_mul';
import { prepareSoftmax } from '../ops/softmax';
import type { WeightFormat } from '../ops/weights';
import { addRef, argmaxRef, embeddingRef, geluRef, siluMulRef, softmaxRef } from '../reference/elementwise';
import { check, type CheckResult } from './compare';
import { destroyAll, poisoned, runAndRead, upload, uploadWeights } from './harness';
import { createRng, randomNormal, type Rng } from '../util/random';

/**
 * Tighter than the 1e-6 used for matmul: nothing here accumulates more than a softmax row sum, and results
 * measure ~1e-14 (add and embedding exactly 0: f16 tables widen exactly and the reference sees the same
 * f16-rounded values). At 1e-6 even exact-erf GELU would pass for the tanh approximation (NMSE ~4e-8);
 * 1e-9 still leaves room for exp's allowed error and for drivers that flush f16 subnormals.
 */
export const ELEMENTWISE_TOLERANCE = 1e-9;

export interface ElementwiseCase {
  /** Rows the tensors hold. */
  maxRows: number;
  /** Rows to compute, set with `set({ rows })` after prepare; defaults to maxRows. */
  rows?: number;
  /** D (for silu_mul: I, the output width). */
  width: number;
  /** Mix in huge inputs (up to ±1e30) to show that no NaN or Infinity comes out. */
  extremes?: boolean;
}

const EXTREMES = [20, 50, 100, 1e4, 1e10, 1e30];

function extreme(rng: Rng): number {
  return EXTREMES[rng.int(EXTREMES.length)] * (rng.next() < 0.5 ? -1 : 1);
}

function randomInputs(rng: Rng, n: number, scale: number, extremes = false): Float32Array {
  const x = randomNormal(rng, n, scale);
  if (extremes) for (let i = 0; i < n; i += 7) x[i] = extreme(rng);
  return x;
}

/** Compares the first `expected.length` values; everything after them (rows past `rows`) must still be NaN. */
function checkRows(name: string, seed: number, actual: Float32Array, expected: Float32Array): CheckResult {
  const n = expected.length;
  const result = check(name, seed, ELEMENTWISE_TOLERANCE, actual.subarray(0, n), expected);
  const written = actual.subarray(n).findIndex((v) => !Number.isNaN(v));
  if (written < 0) return result;
  return { ...result, name: `${name}: wrote past the last row, at index ${n + written}`, nmse: Infinity, passed: false, worstIndex: n + written };
}

function rowsLabel(c: { maxRows: number; rows?: number }): string {
  return c.rows === undefined ? `rows=${c.maxRows}` : `rows=${c.rows}/${c.maxRows}`;
}

async function readF32(gpu: Gpu, op: KernelDispatch<string>, out: Tensor): Promise<Float32Array> {
  const data = await runAndRead(gpu, [op], out);
  if (!(data instanceof Float32Array)) throw new TypeError(`expected f32 output from ${op.name}`);
  return data;
}

export async function checkSiluMul(gpu: Gpu, c: ElementwiseCase, seed: number): Promise<CheckResult> {
  const rng = createRng(seed);
  const { maxRows, width: I } = c;
  const rows = c.rows ?? maxRows;
  const data = randomInputs(rng, maxRows * 2 * I, 3);
  if (c.extremes) {
    // Extremes go in the gates only, so that the exact product silu(±1e30) · up stays within f32.
    for (let i = 0; i < maxRows * 2 * I; i += 7) if (i % (2 * I) < I) data[i] = extreme(rng);
  }
  const gateUp = await upload(gpu, 'gateUp', [maxRows, 2 * I], data);
  const out = await poisoned(gpu, 'out', [maxRows, I]);
  const op = await prepareSiluMul(gpu, { gateUp, out });
  if (rows !== maxRows) op.set({ rows });
  const actual = await readF32(gpu, op, out);
  destroyAll(gateUp, out);
  const name = `silu_mul ${rowsLabel(c)} I=${I}${c.extremes ? ' extremes' : ''}`;
  return checkRows(name, seed, actual, siluMulRef(data, rows, I));
}

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

export async function checkAdd(gpu: Gpu, c: ElementwiseCase, seed: number): Promise<CheckResult> {
  const rng = createRng(seed);
  const { maxRows, width: D } = c;
  const rows = c.rows ?? maxRows;
  const aData = randomInputs(rng, maxRows * D, 1, c.extremes);
  const bData = randomInputs(rng, maxRows * D, 1);
  const a = await upload(gpu, 'a', [maxRows, D], aData);
  const b = await upload(gpu, 'b', [maxRows, D], bData);
  const out = await poisoned(gpu, 'out', [maxRows, D]);
  const op = await prepareAdd(gpu, { a, b, out });
  if (rows !== maxRows) op.set({ rows });
  const actual = await readF32(gpu, op, out);
  destroyAll(a, b, out);
  const n = rows * D;
  return checkRows(`add ${rowsLabel(c)} D=${D}`, seed, actual, addRef(aData.subarray(0, n), bData.subarray(0, n)));
}

export interface EmbeddingCase {
  maxRows: number;
  /** Rows to look up, set with `set({ rows, pos })` after prepare; defaults to maxRows. */
  rows?: number;
  V: number;
  D: number;
  weights: WeightFormat;
  /** Learned position embeddings (GPT-2): a [maxContext, D] table read from row `pos` on; maxContext ≥ maxRows. */
  positions?: { maxContext: number; pos: number };
  /** Plant ids V and 2³²-1 (rows 1 and 2), which the kernel clamps to V-1. */
  outOfRange?: boolean;
}

export async function checkEmbedding(gpu: Gpu, c: EmbeddingCase, seed: number): Promise<CheckResult> {
  const rng = createRng(seed);
  const { maxRows, V, D } = c;
  const rows = c.rows ?? maxRows;
  const idData = new Uint32Array(maxRows).map(() => rng.int(V));
  // The first and last valid rows of the table are where an indexing error shows first.
  idData[0] = 0;
  idData[rows - 1] = V - 1;
  if (c.outOfRange) {
    idData[1] = V;
    idData[2] = 0xffffffff;
  }
  const table = await uploadWeights(gpu, 'table', [V, D], randomNormal(rng, V * D), c.weights === 'f32' ? 'f32' : 'f16');
  const ids = await uploadTensor(gpu, 'ids', 'u32', [maxRows], idData);
  let positions: { table: Float32Array; pos: number } | undefined;
  let posTable: Tensor | undefined;
  if (c.positions) {
    positions = { table: randomNormal(rng, c.positions.maxContext * D), pos: c.positions.pos };
    posTable = await upload(gpu, 'posTable', [c.positions.maxContext, D], positions.table);
  }
  const out = await poisoned(gpu, 'out', [maxRows, D]);
  const op = await prepareEmbedding(gpu, { ids, table: table.tensor, out, posTable, weightFormat: c.weights });
  op.set({ rows, pos: c.positions?.pos ?? 0 });
  const actual = await readF32(gpu, op, out);
  destroyAll(ids, table.tensor, posTable, out);

  const name =
    `embedding ${rowsLabel(c)} V=${V} D=${D} table=${c.weights}` +
    `${c.positions ? ` +positions pos=${c.positions.pos}/${c.positions.maxContext}` : ''}${c.outOfRange ? ' ids≥V' : ''}`;
  return checkRows(name, seed, actual, embeddingRef(idData.subarray(0, rows), table.values, V, D, positions));
}

export interface ArgmaxCase {
  V: number;
}

/** What each row of an argmax check holds; the kernel reduces these rows and leaves one more untouched. */
const ARGMAX_ROWS = ['random', 'tie at adjacent indices', 'tie 256 apart', 'tie at a random pair', '-Infinity but one'] as const;

/**
 * argmax over rows of random logits, rows with the maximum planted at two indices (the lower must win), and
 * a row of -Infinity with one finite value. Indices must match exactly: nmse is 0 or Infinity.
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

export interface SoftmaxCase {
  maxRows: number;
  /** Rows to compute, set with `set({ rows })` after prepare; defaults to maxRows. */
  rows?: number;
  N: number;
  /** Standard deviation of the inputs; ~30 makes exp overflow unless the maximum is subtracted. */
  scale?: number;
  /**
   * Raise one random element per row 100 above the row's maximum: exp then overflows unless the maximum
   * subtracted is the whole row's, not some threads' (softmax is otherwise invariant to that constant).
   */
  spike?: boolean;
}

export async function checkSoftmax(gpu: Gpu, c: SoftmaxCase, seed: number): Promise<CheckResult> {
  const rng = createRng(seed);
  const { maxRows, N } = c;
  const rows = c.rows ?? maxRows;
  const data = randomNormal(rng, maxRows * N, c.scale ?? 1);
  if (c.spike) {
    for (let r = 0; r < maxRows; r++) {
      const row = data.subarray(r * N, (r + 1) * N);
      row[rng.int(N)] = row.reduce((a, b) => Math.max(a, b)) + 100;
    }
  }
  const x = await upload(gpu, 'x', [maxRows, N], data);
  const out = await poisoned(gpu, 'out', [maxRows, N]);
  const op = await prepareSoftmax(gpu, { x, out });
  if (rows !== maxRows) op.set({ rows });
  const actual = await readF32(gpu, op, out);
  destroyAll(x, out);
  const name = `softmax ${rowsLabel(c)} N=${N} scale=${c.scale ?? 1}${c.spike ? ' spike' : ''}`;
  return checkRows(name, seed, actual, softmaxRef(data, rows, N));
}
