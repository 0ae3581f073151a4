/** Checks the embedding gather (f32/f16 tables, learned positions, out-of-range ids) against its CPU reference. */
import type { Gpu } from '../../gpu/device';
import { uploadTensor, type Tensor } from '../../gpu/tensor';
import type { CheckResult } from '../../selftest/compare';
import { checkRows, destroyAll, poisoned, readF32, rowsLabel, upload, uploadWeights } from '../../selftest/harness';
import { createRng, randomNormal } from '../../util/random';
import type { WeightFormat } from '../matmul/weights';
import { prepareEmbedding } from './embedding';
import { embeddingRef } from './reference';

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
  /** Row multiplier (Gemma's √hidden). */
  scale?: number;
  /** Rows of each part of a table split across buffers (summing to V): one launch per part. */
  parts?: number[];
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
  const tableData = randomNormal(rng, V * D);
  const tables: Tensor[] = [];
  const values = new Float32Array(V * D);
  let firstRow = 0;
  for (const partRows of c.parts ?? [V]) {
    const part = tableData.subarray(firstRow * D, (firstRow + partRows) * D);
    const uploaded = await uploadWeights(gpu, `table rows ${firstRow}+${partRows}`, [partRows, D], part, c.weights === 'f32' ? 'f32' : 'f16');
    tables.push(uploaded.tensor);
    values.set(uploaded.values, firstRow * D);
    firstRow += partRows;
  }
  const ids = await uploadTensor(gpu, 'ids', 'u32', [maxRows], idData);
  let positions: { table: Float32Array; pos: number } | undefined;
  let posTable: Tensor | undefined;
  if (c.positions) {
    positions = { table: randomNormal(rng, c.positions.maxContext * D), pos: c.positions.pos };
    posTable = await upload(gpu, 'posTable', [c.positions.maxContext, D], positions.table);
  }
  const out = await poisoned(gpu, 'out', [maxRows, D]);
  const ops = [];
  firstRow = 0;
  for (const table of tables) {
    const part = { firstRow, totalRows: V };
    ops.push(await prepareEmbedding(gpu, { ids, table, part, out, posTable, weightFormat: c.weights, scale: c.scale }));
    firstRow += table.shape[0];
  }
  for (const op of ops) op.set({ rows, pos: c.positions?.pos ?? 0 });
  const actual = await readF32(gpu, ops, out);
  destroyAll(ids, ...tables, posTable, out);

  const name =
    `embedding ${rowsLabel(c)} V=${V} D=${D} table=${c.weights}` +
    `${c.positions ? ` +positions pos=${c.positions.pos}/${c.positions.maxContext}` : ''}${c.outOfRange ? ' ids≥V' : ''}${c.scale ? ` scale=${c.scale}` : ''}` +
    `${c.parts ? ` parts ${c.parts.join('+')}` : ''}`;
  return checkRows(name, seed, actual, embeddingRef(idData.subarray(0, rows), values, V, D, positions, c.scale));
}
