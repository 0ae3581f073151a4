import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../gpu/errors';
import { createTensor } from '../../gpu/tensor';
import { prepareNorm, type NormArgs } from './norm';
import { checkNorm } from './check';
import { expectPass, freshSeed, testGpu } from '../../../test/gpu';

describe('norm on the GPU against the CPU reference', () => {
  const variants = [
    { kind: 'rms', bias: false },
    { kind: 'layer', bias: false },
    { kind: 'layer', bias: true },
  ] as const;
  for (const v of variants) {
    for (const D of [64, 576, 896, 2049, 1]) {
      it(`${v.kind}${v.bias ? ' +bias' : ''} D=${D}, rows 1, 7 and 130`, async () => {
        const gpu = await testGpu();
        for (const rows of [1, 7, 130]) expectPass(await checkNorm(gpu, { ...v, D, rows }, freshSeed()));
      });
    }
    it(`${v.kind}${v.bias ? ' +bias' : ''}: set({ rows }) runs fewer rows than the buffers hold`, async () => {
      const gpu = await testGpu();
      expectPass(await checkNorm(gpu, { ...v, D: 96, rows: 5, maxRows: 13 }, freshSeed()));
      expectPass(await checkNorm(gpu, { ...v, D: 2049, rows: 1, maxRows: 3 }, freshSeed()));
    });
    it(`${v.kind}${v.bias ? ' +bias' : ''}: a large eps, so that leaving it out would show`, async () => {
      expectPass(await checkNorm(await testGpu(), { ...v, D: 100, rows: 3, eps: 0.5 }, freshSeed()));
    });
  }

  it('accumulate: adds the normalised rows to out (Gemma 3 post-norms), rows past the call untouched', async () => {
    const gpu = await testGpu();
    expectPass(await checkNorm(gpu, { kind: 'rms', D: 1152, rows: 7, maxRows: 9, accumulate: true }, freshSeed()));
    expectPass(await checkNorm(gpu, { kind: 'rms', D: 65, rows: 1, accumulate: true }, freshSeed()));
  });

  it('more than 65535 rows: the grid folds into 2-D', async () => {
    expectPass(await checkNorm(await testGpu(), { kind: 'rms', D: 3, rows: 65600 }, freshSeed()));
  });

  it('rejects bad shapes with ShapeError', async () => {
    const gpu = await testGpu();
    const t = (shape: number[]) => createTensor(gpu, 't', 'f32', shape);
    const good: NormArgs = { x: await t([4, 8]), out: await t([4, 8]), weight: await t([8]), kind: 'layer', eps: 1e-5 };
    await expect(prepareNorm(gpu, good)).resolves.toBeDefined();
    const bad: Partial<NormArgs>[] = [
      { out: await t([4, 9]) },
      { out: await t([3, 8]) },
      { weight: await t([9]) },
      { bias: await t([7]) },
      { bias: await t([8]), kind: 'rms' },
      { x: await t([32]) },
      { out: good.x },
      { rows: 5 },
      { eps: -1 },
      { weight: await createTensor(gpu, 'w16', 'f16', [8]) },
    ];
    for (const b of bad) await expect(prepareNorm(gpu, { ...good, ...b })).rejects.toBeInstanceOf(ShapeError);
    const op = await prepareNorm(gpu, good);
    expect(() => op.set({ rows: 5 })).toThrow(ShapeError);
  });
});
