import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../gpu/errors';
import { createTensor } from '../../gpu/tensor';
import type { ElementwiseCase } from '../../selftest/harness';
import { expectPass, freshSeed, testGpu } from '../../../test/gpu';
import { checkGelu } from './check';
import { prepareGelu } from './gelu';

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

describe('gelu on the GPU against the CPU reference', () => {
  for (const s of shapes) {
    it(label(s), async () => {
      expectPass(await checkGelu(await testGpu(), s, freshSeed()));
    });
  }

  it('gated (GeGLU): gelu(gate)·up, odd widths, fewer rows than the tensors hold', async () => {
    const gpu = await testGpu();
    expectPass(await checkGelu(gpu, { maxRows: 7, width: 172 }, freshSeed(), { gated: true }));
    expectPass(await checkGelu(gpu, { maxRows: 37, rows: 5, width: 4097 }, freshSeed(), { gated: true }));
    expectPass(await checkGelu(gpu, { maxRows: 3, width: 1 }, freshSeed(), { gated: true }));
  });

  it('gives finite results for inputs up to ±1e30', async () => {
    expectPass(await checkGelu(await testGpu(), { maxRows: 7, width: 4864, extremes: true }, freshSeed()));
  });

  it('erf form (BERT), plain and gated: odd widths, fewer rows than the tensors hold, inputs up to ±1e30', async () => {
    const gpu = await testGpu();
    expectPass(await checkGelu(gpu, { maxRows: 37, width: 4097 }, freshSeed(), { erf: true }));
    expectPass(await checkGelu(gpu, { maxRows: 130, rows: 37, width: 172 }, freshSeed(), { erf: true }));
    expectPass(await checkGelu(gpu, { maxRows: 7, width: 4864, extremes: true }, freshSeed(), { erf: true }));
    expectPass(await checkGelu(gpu, { maxRows: 9, rows: 5, width: 173 }, freshSeed(), { erf: true, gated: true }));
  });

  it('over more than 65535 workgroups (grid folded into 2-D)', async () => {
    expectPass(await checkGelu(await testGpu(), { maxRows: 2, width: 8_400_000 }, freshSeed()));
  });
});

describe('gelu rejects bad inputs', () => {
  it('mismatched shapes and aliasing', async () => {
    const gpu = await testGpu();
    const x = await createTensor(gpu, 'x', 'f32', [4, 8]);
    await expect(prepareGelu(gpu, { x, out: await createTensor(gpu, 'out', 'f32', [4, 9]) })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareGelu(gpu, { x, out: x })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareGelu(gpu, { x, out: await createTensor(gpu, 'out', 'u32', [4, 8]) })).rejects.toBeInstanceOf(ShapeError);
  });

  it('rows beyond the tensors are refused, at prepare and in set()', async () => {
    const gpu = await testGpu();
    const x = await createTensor(gpu, 'x', 'f32', [4, 8]);
    await expect(prepareGelu(gpu, { x, out: await createTensor(gpu, 'out', 'f32', [4, 8]), rows: 5 })).rejects.toBeInstanceOf(ShapeError);
    const op = await prepareGelu(gpu, { x, out: await createTensor(gpu, 'out', 'f32', [4, 8]) });
    expect(() => op.set({ rows: 5 })).toThrow(ShapeError);
  });
});
