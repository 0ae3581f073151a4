import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../gpu/errors';
import { createTensor, type DType } from '../../gpu/tensor';
import { expectPass, freshSeed, testGpu, weightFormats } from '../../../test/gpu';
import { checkEmbedding } from './check';
import { prepareEmbedding } from './embedding';

const formats = await weightFormats();

describe('embedding gather on the GPU against the CPU reference', () => {
  for (const weights of formats) {
    for (const D of [576, 65]) {
      it(`table ${weights}, V=1000, D=${D}`, async () => {
        const gpu = await testGpu();
        const V = 1000;
        expectPass(await checkEmbedding(gpu, { maxRows: 37, V, D, weights }, freshSeed()));
        expectPass(await checkEmbedding(gpu, { maxRows: 7, rows: 5, V, D, weights, outOfRange: true }, freshSeed()));
        // pos + rows reaches the end of the position table exactly.
        const positions = { maxContext: 140, pos: 133 };
        expectPass(await checkEmbedding(gpu, { maxRows: 130, rows: 7, V, D, weights, positions }, freshSeed()));
        expectPass(await checkEmbedding(gpu, { maxRows: 1, V, D, weights, positions: { maxContext: 1, pos: 0 } }, freshSeed()));
        // Gemma's √hidden scale (√1152 rounded to bf16).
        expectPass(await checkEmbedding(gpu, { maxRows: 9, V, D, weights, scale: 34 }, freshSeed()));
        // A table split across buffers: each launch writes the rows its part holds; ids past the end clamp into the last part.
        expectPass(await checkEmbedding(gpu, { maxRows: 37, V, D, weights, parts: [384, 512, 104] }, freshSeed()));
        expectPass(await checkEmbedding(gpu, { maxRows: 9, rows: 6, V, D, weights, outOfRange: true, parts: [64, 936], positions, scale: 34 }, freshSeed()));
      });
    }
  }
});

describe('embedding rejects bad inputs', () => {
  const tensor = async (dtype: DType, shape: number[]) => createTensor(await testGpu(), 'bad', dtype, shape);

  it('ids dtype, table width, position range', async () => {
    const gpu = await testGpu();
    const ids = await tensor('u32', [4]);
    const table = await tensor('f32', [10, 8]);
    const out = await tensor('f32', [4, 8]);
    await expect(prepareEmbedding(gpu, { ids: await tensor('f32', [4]), table, out })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareEmbedding(gpu, { ids, table: await tensor('f32', [10, 9]), out })).rejects.toBeInstanceOf(ShapeError);
    const posTable = await tensor('f32', [6, 8]);
    await expect(prepareEmbedding(gpu, { ids, table, out, posTable, pos: 3 })).rejects.toBeInstanceOf(ShapeError);
    const op = await prepareEmbedding(gpu, { ids, table, out, posTable, pos: 2 });
    expect(() => op.set({ pos: 3 })).toThrow(ShapeError);
    await expect(prepareEmbedding(gpu, { ids, table, out, part: { firstRow: 64, totalRows: 70 } })).rejects.toBeInstanceOf(ShapeError);
  });

});
