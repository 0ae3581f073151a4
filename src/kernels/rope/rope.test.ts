import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../gpu/errors';
import { createTensor } from '../../gpu/tensor';
import { ropeInvFreq, ropeTable } from '../../model/rope-table';
import { prepareRope, type RopeArgs } from './rope';
import { checkRope, type RopeCase } from './check';
import { expectPass, freshSeed, testGpu } from '../../../test/gpu';

const LLAMA32_SCALING = {
  type: 'llama3',
  factor: 32,
  lowFreqFactor: 1,
  highFreqFactor: 4,
  originalMaxPositionEmbeddings: 8192,
} as const;

describe('rope frequencies and table', () => {
  it('matches θ^(−2i/d), and linear scaling divides by the factor', () => {
    const inv = ropeInvFreq({ rotaryDim: 8, theta: 10000 });
    expect(Array.from(inv)).toEqual([1, 10000 ** -0.25, 10000 ** -0.5, 10000 ** -0.75]);
    const scaled = ropeInvFreq({ rotaryDim: 8, theta: 10000, scaling: { type: 'linear', factor: 4 } });
    expect(Array.from(scaled)).toEqual(Array.from(inv, (f) => f / 4));
  });

  it('llama3 scaling matches hand-computed Llama-3.2-1B values in each regime', () => {
    const inv = ropeInvFreq({ rotaryDim: 64, theta: 500000, scaling: LLAMA32_SCALING });
    const near = (actual: number, expected: number) => expect(Math.abs(actual / expected - 1)).toBeLessThan(1e-12);
    // Wavelengths: low-frequency bound 8192/1 = 8192, high-frequency bound 8192/4 = 2048.
    // i = 0: invFreq 1, wavelength 2π < 2048 → unchanged.
    near(inv[0], 1);
    // i = 14: 500000^(−28/64) = 0.0032114459947525, wavelength 1956.5 < 2048 → unchanged.
    near(inv[14], 0.0032114459947525);
    // i = 16: 500000^(−1/2) = 0.00141421356237, wavelength 2π·707.107 = 4442.883 (between the bounds):
    // smooth = (8192/4442.883 − 1)/(4 − 1) = 0.28128260516; (1 − smooth)·f/32 + smooth·f = 0.000429556796559.
    near(inv[16], 0.000429556796559368);
    // i = 31: 500000^(−62/64) = 3.01385815213917e−6, wavelength 2.08e6 > 8192 → divided by 32.
    near(inv[31], 9.41830672543491e-8);
  });

  it('table holds cos and sin of p·invFreq', () => {
    // θ = 4 over 4 rotated dims: invFreq = [1, 4^(−1/2)] = [1, 0.5].
    const t = ropeTable({ rotaryDim: 4, theta: 4 }, 3);
    const expected = [0, 0, 1, 0.5, 2, 1].flatMap((a) => [Math.cos(a), Math.sin(a)]);
    expect(Array.from(t)).toEqual(Array.from(Float32Array.from(expected)));
  });

  it('longrope: short factors below the pre-trained context, long ones from it on, cos/sin times the attention factor', () => {
    const scaling = { type: 'longrope', shortFactor: [2, 4], longFactor: [8, 16], originalMaxPositionEmbeddings: 2, attentionFactor: 1.5 } as const;
    const t = ropeTable({ rotaryDim: 4, theta: 4, scaling }, 4);
    // invFreq [1, 0.5] divided by [2, 4] at positions 0 and 1, by [8, 16] at 2 and 3.
    const angles = [0, 0, 1 / 2, 0.5 / 4, 2 / 8, 1 / 16, 3 / 8, 1.5 / 16];
    const expected = angles.flatMap((a) => [1.5 * Math.cos(a), 1.5 * Math.sin(a)]);
    expect(Array.from(t)).toEqual(Array.from(Float32Array.from(expected)));
  });
});

describe('rope on the GPU against the CPU reference', () => {
  const shapes = [
    { nHeads: 9, nKvHeads: 3, headDim: 64, rotaryDim: 64 },
    { nHeads: 9, nKvHeads: 3, headDim: 64, rotaryDim: 32 },
    { nHeads: 14, nKvHeads: 2, headDim: 80, rotaryDim: 80 },
    { nHeads: 14, nKvHeads: 2, headDim: 128, rotaryDim: 128 },
  ];
  const run = async (c: RopeCase) => expectPass(await checkRope(await testGpu(), c, freshSeed()));

  for (const s of shapes) {
    for (const qkNorm of [false, true]) {
      const label = `${s.nHeads}/${s.nKvHeads}×${s.headDim} rotary ${s.rotaryDim}${qkNorm ? ' +qk-norm' : ''}`;
      it(`${label}, T 37, 7 and 1`, async () => {
        const base = { ...s, qkNorm, maxContext: 100 };
        await run({ ...base, steps: [{ T: 37, pos: 0 }] });
        await run({ ...base, steps: [{ T: 7, pos: 50 }] });
        await run({ ...base, steps: [{ T: 1, pos: 99 }] });
      });
    }
    it(`${s.nHeads}/${s.nKvHeads}×${s.headDim} rotary ${s.rotaryDim}: end of an 8192 context`, async () => {
      const base = { ...s, maxContext: 8192, theta: 500000 };
      await run({ ...base, steps: [{ T: 37, pos: 8192 - 37 }] });
      // A prefill chunk then a decode step through the same dispatch, positions set per call.
      await run({ ...base, qkNorm: true, steps: [{ T: 7, pos: 8180 }, { T: 1, pos: 8187 }] });
      // A large eps, so that leaving it out would show.
      await run({ ...base, qkNorm: true, normEps: 0.5, steps: [{ T: 3, pos: 8189 }] });
    });
  }

  it('f16 KV cache (packed, and native where the device has shader-f16) within f16 rounding', async () => {
    const gpu = await testGpu();
    const c = { nHeads: 9, nKvHeads: 3, headDim: 64, rotaryDim: 64, maxContext: 100 } as const;
    await run({ ...c, kv: 'f16-packed', steps: [{ T: 37, pos: 0 }, { T: 1, pos: 37 }] });
    await run({ ...c, kv: 'f16-packed', rotaryDim: 32, qkNorm: true, steps: [{ T: 7, pos: 90 }] });
    if (gpu.features.shaderF16) await run({ ...c, kv: 'f16', steps: [{ T: 7, pos: 50 }] });
  });

  it('llama3-scaled frequencies at the end of an 8192 context', async () => {
    const c = { nHeads: 8, nKvHeads: 2, headDim: 64, rotaryDim: 64, maxContext: 8192 } as const;
    await run({ ...c, theta: 500000, scaling: LLAMA32_SCALING, steps: [{ T: 7, pos: 8185 }] });
  });

  it('rotaryDim 0 is a plain K/V cache write', async () => {
    for (const qkNorm of [false, true]) {
      const c = { nHeads: 9, nKvHeads: 3, headDim: 64, rotaryDim: 0, maxContext: 64, qkNorm } as const;
      await run({ ...c, steps: [{ T: 7, pos: 3 }, { T: 1, pos: 10 }, { T: 37, pos: 27 }] });
    }
  });

  it('more than 65535 (token, head) workgroups: the grid folds into 2-D', async () => {
    const c = { nHeads: 40, nKvHeads: 8, headDim: 32, rotaryDim: 32, maxContext: 1300 } as const;
    await run({ ...c, steps: [{ T: 1200, pos: 99 }] });
  });

  it('rejects bad shapes and positions with ShapeError', async () => {
    const gpu = await testGpu();
    const t = (shape: number[]) => createTensor(gpu, 't', 'f32', shape);
    const [nHeads, nKvHeads, headDim, maxContext, maxT] = [4, 2, 8, 16, 3];
    const good: RopeArgs = {
      qkv: await t([maxT, (nHeads + 2 * nKvHeads) * headDim]),
      q: await t([maxT, nHeads, headDim]),
      kCache: await t([nKvHeads, maxContext, headDim]),
      vCache: await t([nKvHeads, maxContext, headDim]),
      table: await t([maxContext, 4, 2]),
      nHeads,
      nKvHeads,
      headDim,
      rotaryDim: 8,
      maxContext,
      T: maxT,
      pos: 0,
    };
    const op = await prepareRope(gpu, good);
    const bad: Partial<RopeArgs>[] = [
      { pos: 14 },
      { T: 4 },
      { table: await t([15, 4, 2]) },
      { table: await t([16, 3, 2]) },
      { table: undefined },
      { rotaryDim: 7 },
      { rotaryDim: 10, table: await t([16, 5, 2]) },
      { qkv: await t([maxT, 63]) },
      { q: await t([maxT, nHeads + 1, headDim]) },
      { kCache: await t([nKvHeads, maxContext - 1, headDim]) },
      { vCache: good.kCache },
      { qNorm: await t([headDim]) },
      { qNorm: await t([headDim]), kNorm: await t([headDim]) },
      { qNorm: await t([headDim - 1]), kNorm: await t([headDim]), normEps: 1e-6 },
    ];
    for (const b of bad) await expect(prepareRope(gpu, { ...good, ...b })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareRope(gpu, { ...good, rotaryDim: 0, table: undefined })).resolves.toBeDefined();
    expect(() => op.set({ T: 1, pos: 16 })).toThrow(ShapeError);
    expect(() => op.set({ T: 4, pos: 0 })).toThrow(ShapeError);
  });
});
