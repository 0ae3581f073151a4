import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../src/gpu/errors';
import { createTensor, type DType } from '../../src/gpu/tensor';
import { prepareAdd } from '../../src/ops/add';
import { prepareArgmax } from '../../src/ops/argmax';
import { prepareEmbedding } from '../../src/ops/embedding';
import { prepareGelu } from '../../src/ops/gelu';
import { prepareSiluMul } from '../../src/ops/silu_mul';
import { prepareSoftmax } from '../../src/ops/softmax';
import {
  checkAdd,
  checkArgmax,
  checkEmbedding,
  checkGelu,
  checkSiluMul,
  checkSoftmax,
  type ElementwiseCase,
} from '../../src/selftest/elementwise';
import { expectPass, freshSeed, testGpu, weightFormats } from '../gpu';

const formats = await weightFormats();

/** Widths 1 and 4097 are odd and not multiples of the workgroup; `rows` < maxRows goes through set(). */
const shapes: ElementwiseCase[] = [
  { maxRows: 1, width: 1 },
  { maxRows: 1, width: 4864 },
  { maxRows: 7, width: 172 },
  { maxRows: 37, width: 4097 },
  { maxRows: 130, width: 64 },
  { maxRows: 130, width: 4864 },
  { maxRows: 130, rows: 37, width: 172 },
  { maxRows: 7, rows: 1, width: 4097 },
];
const label = (s: ElementwiseCase) => `${s.rows ?? s.maxRows}/${s.maxRows} rows × ${s.width}`;

describe('element-wise kernels on the GPU against the CPU reference', () => {
  for (const s of shapes) {
    it(`silu_mul, gelu and add, ${label(s)}`, async () => {
      const gpu = await testGpu();
      expectPass(await checkSiluMul(gpu, s, freshSeed()));
      expectPass(await checkGelu(gpu, s, freshSeed()));
      expectPass(await checkAdd(gpu, s, freshSeed()));
    });
  }

  it('silu_mul and gelu give finite results for inputs up to ±1e30', async () => {
    const gpu = await testGpu();
    expectPass(await checkSiluMul(gpu, { maxRows: 7, width: 4864, extremes: true }, freshSeed()));
    expectPass(await checkGelu(gpu, { maxRows: 7, width: 4864, extremes: true }, freshSeed()));
  });

  it('add over more than 65535 workgroups (grid folded into 2-D)', async () => {
    expectPass(await checkAdd(await testGpu(), { maxRows: 2, width: 8_400_000 }, freshSeed()));
  });
});

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
      });
    }
  }
});

describe('argmax on the GPU against the CPU reference', () => {
  for (const V of [1, 512, 4097, 151936]) {
    it(`V=${V}: random rows, planted ties (lowest index wins), a -Infinity row`, async () => {
      expectPass(await checkArgmax(await testGpu(), { V }, freshSeed()));
    });
  }
});

describe('softmax on the GPU against the CPU reference', () => {
  for (const N of [1, 7, 512, 4097, 32000]) {
    it(`N=${N}`, async () => {
      const gpu = await testGpu();
      expectPass(await checkSoftmax(gpu, { maxRows: 7, rows: 5, N }, freshSeed()));
      if (N <= 4097) expectPass(await checkSoftmax(gpu, { maxRows: 37, N }, freshSeed()));
    });
  }
  it('inputs large enough that exp would overflow without subtracting the whole row\'s maximum', async () => {
    const gpu = await testGpu();
    expectPass(await checkSoftmax(gpu, { maxRows: 3, N: 4097, scale: 30 }, freshSeed()));
    expectPass(await checkSoftmax(gpu, { maxRows: 3, N: 4097, scale: 30, spike: true }, freshSeed()));
    expectPass(await checkSoftmax(gpu, { maxRows: 2, N: 32000, spike: true }, freshSeed()));
  });
});

describe('element-wise kernels reject bad inputs', () => {
  const tensor = async (dtype: DType, shape: number[]) => createTensor(await testGpu(), 'bad', dtype, shape);

  it('silu_mul: odd gateUp width, wrong out shape, aliasing', async () => {
    const gpu = await testGpu();
    const gateUp = await tensor('f32', [4, 6]);
    await expect(prepareSiluMul(gpu, { gateUp: await tensor('f32', [4, 7]), out: await tensor('f32', [4, 3]) })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareSiluMul(gpu, { gateUp, out: await tensor('f32', [4, 6]) })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareSiluMul(gpu, { gateUp, out: { ...gateUp, shape: [4, 3] } })).rejects.toBeInstanceOf(ShapeError);
  });

  it('gelu, add and softmax: mismatched shapes, dtypes and aliasing', async () => {
    const gpu = await testGpu();
    const x = await tensor('f32', [4, 8]);
    await expect(prepareGelu(gpu, { x, out: await tensor('f32', [4, 9]) })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareGelu(gpu, { x, out: x })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareAdd(gpu, { a: x, b: await tensor('f32', [3, 8]), out: await tensor('f32', [4, 8]) })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareAdd(gpu, { a: x, b: await tensor('f32', [4, 8]), out: x })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareSoftmax(gpu, { x, out: await tensor('u32', [4, 8]) })).rejects.toBeInstanceOf(ShapeError);
  });

  it('rows beyond the tensors are refused, at prepare and in set()', async () => {
    const gpu = await testGpu();
    const x = await tensor('f32', [4, 8]);
    await expect(prepareSoftmax(gpu, { x, out: await tensor('f32', [4, 8]), rows: 5 })).rejects.toBeInstanceOf(ShapeError);
    const op = await prepareGelu(gpu, { x, out: await tensor('f32', [4, 8]) });
    expect(() => op.set({ rows: 5 })).toThrow(ShapeError);
  });

  it('embedding: ids dtype, table width, position range', async () => {
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
  });

  it('argmax: out must be u32 [rows]', async () => {
    const gpu = await testGpu();
    const logits = await tensor('f32', [2, 100]);
    await expect(prepareArgmax(gpu, { logits, out: await tensor('f32', [2]) })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareArgmax(gpu, { logits, out: await tensor('u32', [3]) })).rejects.toBeInstanceOf(ShapeError);
  });
});
