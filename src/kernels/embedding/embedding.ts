/**
 * embedding: out[t] = table[ids[t]], plus posTable[pos + t] for models with learned absolute positions
 * (GPT-2). The table may be f32 or f16, whole or one row range of a table split across buffers (one launch
 * per part); `rows` and `pos` are uniforms set per call.
 */
import embeddingWgsl from './embedding.wgsl?raw';
import type { Gpu } from '../../gpu/device';
import { KernelDispatch, placeholderBuffer, type GridFn } from '../../gpu/dispatch';
import { ShapeError } from '../../gpu/errors';
import type { KernelSpec } from '../../gpu/pipelines';
import { checkRows, expectTensor, type Tensor } from '../../gpu/tensor';
import { defineUniforms } from '../../gpu/uniforms';
import { weightFormat, weightPrelude, type WeightFormat } from '../matmul/weights';

interface EmbeddingKey {
  weights: WeightFormat;
  hasPositions: boolean;
}

type Field = 'rows' | 'pos' | 'D' | 'V' | 'scale' | 'first' | 'total';

const WG = 256;

export const embeddingKernel: KernelSpec<EmbeddingKey, Field> = {
  name: 'embedding',
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'ids', kind: 'read' },
    { name: 'w', kind: 'read' },
    { name: 'posTable', kind: 'read' },
    { name: 'out', kind: 'storage' },
  ],
  uniforms: defineUniforms({ rows: 'u32', pos: 'u32', D: 'u32', V: 'u32', scale: 'f32', first: 'u32', total: 'u32' }),
  shader: { file: 'embedding.wgsl', code: embeddingWgsl },
  preludes: (key) => [weightPrelude(key.weights)],
  constants: (key) => ({ WG, HAS_POSITIONS: Number(key.hasPositions) }),
};

export interface EmbeddingArgs {
  /**
   * [maxRows] u32 token ids. Validate them (< V) on the CPU before uploading: the kernel clamps an id ≥ V
   * to V-1 only so that it never reads out of bounds.
   */
  ids: Tensor;
  /** [V, D] f32 or f16 embedding table, or rows [part.firstRow, part.firstRow + V) of one. */
  table: Tensor;
  /**
   * The table is one part of a [totalRows, D] table split across buffers (src/model/split.ts): this launch
   * writes only the rows whose ids it holds, and the other parts' launches write the rest.
   */
  part?: { firstRow: number; totalRows: number };
  /** [maxRows, D] f32. */
  out: Tensor;
  /** [maxContext, D] f32 learned position embeddings (GPT-2), optional. */
  posTable?: Tensor;
  /** Rows to look up, ≤ maxRows; defaults to maxRows and can be changed later with `set({ rows })`. */
  rows?: number;
  /** Position of the first row, for `posTable`; pos + rows ≤ maxContext. Defaults to 0; `set({ pos })`. */
  pos?: number;
  /** Force how an f16 table is read (tests cover both paths on a shader-f16 device). */
  weightFormat?: WeightFormat;
  /** Multiplier of every looked-up row (Gemma's √hidden); default 1. */
  scale?: number;
}

function validateEmbedding(a: EmbeddingArgs): { maxRows: number; V: number; D: number; maxContext: number; first: number; total: number } {
  if (a.ids.shape.length !== 1) throw new ShapeError('embedding', `ids must be 1-D, got [${a.ids.shape}]`);
  if (a.table.shape.length !== 2) throw new ShapeError('embedding', `table must be 2-D, got [${a.table.shape}]`);
  const [maxRows] = a.ids.shape;
  const [V, D] = a.table.shape;
  if (maxRows < 1 || V < 1 || D < 1) throw new ShapeError('embedding', `empty shape: ids [${a.ids.shape}], table [${a.table.shape}]`);
  expectTensor('embedding', 'ids', a.ids, 'u32', [maxRows]);
  expectTensor('embedding', 'table', a.table, ['f32', 'f16'], [V, D]);
  expectTensor('embedding', 'out', a.out, 'f32', [maxRows, D]);
  let maxContext = 0;
  if (a.posTable) {
    if (a.posTable.shape.length !== 2) throw new ShapeError('embedding', `posTable must be 2-D, got [${a.posTable.shape}]`);
    maxContext = a.posTable.shape[0];
    expectTensor('embedding', 'posTable', a.posTable, 'f32', [maxContext, D]);
  }
  const { firstRow: first, totalRows: total } = a.part ?? { firstRow: 0, totalRows: V };
  if (!Number.isInteger(first) || first < 0 || !Number.isInteger(total) || first + V > total) {
    throw new ShapeError('embedding', `a table of ${V} rows cannot start at row ${first} of ${total}`);
  }
  return { maxRows, V, D, maxContext, first, total };
}

export async function prepareEmbedding(gpu: Gpu, a: EmbeddingArgs): Promise<KernelDispatch<Field>> {
  const { maxRows, V, D, maxContext, first, total } = validateEmbedding(a);
  const hasPositions = a.posTable !== undefined;
  const key: EmbeddingKey = { weights: weightFormat(gpu, 'embedding', a.table, a.weightFormat), hasPositions };
  const grid: GridFn<Field> = (p) => {
    checkRows('embedding', p.rows, maxRows);
    if (hasPositions && (!Number.isInteger(p.pos) || p.pos < 0 || p.pos + p.rows > maxContext)) {
      throw new ShapeError('embedding', `pos + rows must be ≤ ${maxContext} (posTable rows), got pos ${p.pos} + rows ${p.rows}`);
    }
    return Math.ceil((p.rows * p.D) / WG);
  };
  const scale = a.scale ?? 1;
  if (!Number.isFinite(scale)) throw new ShapeError('embedding', `scale must be finite, got ${scale}`);
  const params = { rows: a.rows ?? maxRows, pos: a.pos ?? 0, D, V, scale, first, total };
  const resources = {
    ids: a.ids.buffer,
    w: a.table.buffer,
    posTable: a.posTable?.buffer ?? placeholderBuffer(gpu),
    out: a.out.buffer,
  };
  return KernelDispatch.create(gpu, embeddingKernel, key, params, resources, grid);
}
