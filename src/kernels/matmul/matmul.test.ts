import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../gpu/device';
import { ShapeError } from '../../gpu/errors';
import { createTensor } from '../../gpu/tensor';
import { DEFAULT_TILE, defaultMatvecShape, prepareMatmul, tileShapeProblem } from './matmul';
import { tuneMatvec, tuneTiled, type TuneOptions } from './tune';
import { checkMatmul } from './check';
import { expectPass, freshSeed, testGpu, weightFormats } from '../../../test/gpu';
import { acquireNodeGpu } from '../../gpu/node';
import { memoryTuningStore } from '../../gpu/tuning-store';

const formats = await weightFormats();

/** Times candidates even on the software adapter tests run on, counting them, with a store of its own. */
function timedTuning(more: TuneOptions = {}): TuneOptions & { timed: number } {
  const options = { store: memoryTuningStore(), timeSoftware: true, ...more, timed: 0, onTimed: () => void options.timed++ };
  return options;
}

/** The single-subgroup reduction where the device has subgroups wider than one thread. */
function singleSubgroup(gpu: Gpu): 'single-subgroup'[] {
  return gpu.features.subgroups && gpu.subgroupMinSize > 1 ? ['single-subgroup'] : [];
}

describe('matvec tuning', () => {
  it('picks one of its candidate shapes, caches it, and refuses shapes the kernel cannot run', async () => {
    const gpu = await testGpu();
    const shape = await tuneMatvec(gpu, 300, 64, 'f32', timedTuning());
    expect([32, 64, 128, 256]).toContain(shape.wg);
    expect([1, 2, 4, 8]).toContain(shape.rows);
    expect(await tuneMatvec(gpu, 300, 64, 'f32', timedTuning())).toBe(shape);
    const x = await createTensor(gpu, 'x', 'f32', [1, 8]);
    const w = await createTensor(gpu, 'w', 'f32', [4, 8]);
    const y = await createTensor(gpu, 'y', 'f32', [1, 4]);
    await expect(prepareMatmul(gpu, { x, w, y, variant: 'matvec', matvecShape: { wg: 48, rows: 4 } })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareMatmul(gpu, { x, w, y, variant: 'matvec', matvecShape: { wg: 64, rows: 33 } })).rejects.toBeInstanceOf(ShapeError);
    // One subgroup cannot reduce a workgroup wider than it.
    const wide = { wg: 2 * Math.max(1, gpu.subgroupMinSize), rows: 4 };
    await expect(prepareMatmul(gpu, { x, w, y, variant: 'matvec', matvecShape: wide, reduce: 'single-subgroup' })).rejects.toBeInstanceOf(ShapeError);
  });
});

describe('tiled matmul tuning', () => {
  it('picks one of its candidate shapes, caches it, and refuses shapes the kernel or device cannot run', async () => {
    const gpu = await testGpu();
    const shape = await tuneTiled(gpu, 40, 72, 24, 'f32', timedTuning());
    expect([8, 16]).toContain(shape.wgM);
    expect([8, 16]).toContain(shape.wgN);
    expect([8, 16, 32]).toContain(shape.tileK);
    expect(await tuneTiled(gpu, 40, 72, 24, 'f32', timedTuning())).toBe(shape);
    const x = await createTensor(gpu, 'x', 'f32', [8, 8]);
    const w = await createTensor(gpu, 'w', 'f32', [4, 8]);
    const y = await createTensor(gpu, 'y', 'f32', [8, 4]);
    const { maxComputeInvocationsPerWorkgroup, maxComputeWorkgroupStorageSize } = gpu.device.limits;
    const refused = [
      { wgM: 16, wgN: 2, tileK: 16 }, // too few threads per row for the fused norm
      { wgM: maxComputeInvocationsPerWorkgroup / 16 + 1, wgN: 16, tileK: 16 }, // over the device's threads
      { wgM: 16, wgN: 16, tileK: Math.ceil(maxComputeWorkgroupStorageSize / (4 * 4 * 32)) }, // over its workgroup memory
    ];
    expect(tileShapeProblem(gpu, refused[2])).toMatch(/workgroup memory/);
    for (const tileShape of refused) {
      await expect(prepareMatmul(gpu, { x, w, y, variant: 'tiled', tileShape })).rejects.toBeInstanceOf(ShapeError);
    }
  });
});

describe('tuning is bounded and persists', () => {
  it('a reload (a fresh device, the same store) times nothing and gets the stored shapes', async () => {
    // A zero budget times one candidate per problem: enough to see that the reload times none.
    const store = memoryTuningStore();
    const first = timedTuning({ store, budgetMs: 0 });
    const firstGpu = await acquireNodeGpu();
    const matvec = await tuneMatvec(firstGpu, 260, 96, 'f16', first);
    const tile = await tuneTiled(firstGpu, 33, 260, 96, 'f16', first);
    expect(first.timed).toBe(2);
    firstGpu.device.destroy();

    const reload = timedTuning({ store, budgetMs: 0 });
    const gpu = await acquireNodeGpu();
    expect(await tuneMatvec(gpu, 260, 96, 'f16', reload)).toEqual(matvec);
    expect(await tuneTiled(gpu, 33, 260, 96, 'f16', reload)).toEqual(tile);
    expect(reload.timed).toBe(0);
    gpu.device.destroy();
  });

  it('stops timing candidates once the budget is spent', async () => {
    const options = timedTuning({ budgetMs: 0 });
    await tuneMatvec(await testGpu(), 200, 48, 'f32', options);
    expect(options.timed).toBe(1);
  });

  it('a software adapter gets the default shapes without timing any', async () => {
    const gpu = await testGpu();
    if (process.env.WEBGPU_LLM_ADAPTER === 'lavapipe') expect(gpu.isSoftwareAdapter).toBe(true);
    if (!gpu.isSoftwareAdapter) return;
    const options = timedTuning({ timeSoftware: false });
    expect(await tuneMatvec(gpu, 180, 40, 'f32', options)).toEqual(defaultMatvecShape(gpu, 'f32'));
    expect(await tuneTiled(gpu, 9, 180, 40, 'f32', options)).toEqual(DEFAULT_TILE);
    expect(options.timed).toBe(0);
  });
});

describe('matmul on the GPU against the CPU reference', () => {
  const shapes = [
    { M: 1, N: 1000, K: 64 },
    { M: 7, N: 1000, K: 37 },
    { M: 37, N: 129, K: 130 },
    { M: 130, N: 97, K: 83 },
    { M: 1, N: 4097, K: 19 },
    { M: 3, N: 4097, K: 20 },
  ];
  for (const weights of formats) {
    for (const s of shapes) {
      for (const variant of ['tiled', 'matvec'] as const) {
        it(`${variant} ${s.M}x${s.N}x${s.K} ${weights}`, async () => {
          expectPass(await checkMatmul(await testGpu(), { ...s, weights, variant }, freshSeed()));
        });
      }
    }
    it(`matvec with workgroup-memory and (where the device has them) subgroup reductions, ${weights}`, async () => {
      const gpu = await testGpu();
      const modes = gpu.features.subgroups ? (['workgroup', 'subgroup'] as const) : (['workgroup'] as const);
      for (const reduce of modes) {
        for (const s of [{ M: 1, N: 4097, K: 83 }, { M: 2, N: 5, K: 300 }, { M: 1, N: 3, K: 1 }]) {
          expectPass(await checkMatmul(gpu, { ...s, weights, variant: 'matvec', reduce, bias: true }, freshSeed()));
        }
      }
    });
    it(`matvec in every workgroup shape the tuner may pick, ${weights}`, async () => {
      const gpu = await testGpu();
      for (const matvecShape of [{ wg: 32, rows: 1 }, { wg: 128, rows: 3 }, { wg: 256, rows: 8 }]) {
        expectPass(await checkMatmul(gpu, { M: 2, N: 1001, K: 77, weights, variant: 'matvec', matvecShape, accumulate: true }, freshSeed()));
      }
    });
    it(`matvec with more rows than threads (each thread stores several), every reduction, ${weights}`, async () => {
      const gpu = await testGpu();
      const modes = [...singleSubgroup(gpu), ...(gpu.features.subgroups ? (['subgroup'] as const) : []), 'workgroup' as const];
      for (const [i, reduce] of modes.entries()) {
        const matvecShape = { wg: reduce === 'single-subgroup' ? Math.min(8, gpu.subgroupMinSize) : 8, rows: i % 2 ? 13 : 32 };
        expectPass(await checkMatmul(gpu, { M: 2, N: 101, K: 83, weights, variant: 'matvec', matvecShape, reduce, bias: true, accumulate: true }, freshSeed()));
        const fused = i % 2 ? { swiglu: true } : { norm: true };
        expectPass(await checkMatmul(gpu, { M: 1, N: 45, K: 96, weights, variant: 'matvec', matvecShape, reduce, ...fused }, freshSeed()));
      }
    });
    it(`SwiGLU fused into the input (gate|up → silu(gate)·up), tiled and matvec, ${weights}`, async () => {
      const gpu = await testGpu();
      for (const variant of ['tiled', 'matvec'] as const) {
        for (const s of [{ M: 7, N: 65, K: 172 }, { M: 1, N: 1000, K: 37 }]) {
          expectPass(await checkMatmul(gpu, { ...s, weights, variant, swiglu: true, accumulate: true }, freshSeed()));
        }
      }
    });
    it(`RMSNorm fused into the input, tiled (rows past one tile) and matvec (both reductions), ${weights}`, async () => {
      const gpu = await testGpu();
      for (const s of [{ M: 67, N: 65, K: 172 }, { M: 5, N: 33, K: 1 }]) {
        expectPass(await checkMatmul(gpu, { ...s, weights, variant: 'tiled', norm: true, bias: true }, freshSeed()));
      }
      const modes = gpu.features.subgroups ? (['workgroup', 'subgroup'] as const) : (['workgroup'] as const);
      for (const reduce of modes) {
        for (const s of [{ M: 1, N: 1000, K: 37 }, { M: 2, N: 5, K: 300 }, { M: 1, N: 3, K: 1 }]) {
          expectPass(await checkMatmul(gpu, { ...s, weights, variant: 'matvec', reduce, norm: true, accumulate: true }, freshSeed()));
        }
      }
    });
    it(`tiled in tile shapes the tuner may pick, with the fused norm, ${weights}`, async () => {
      const gpu = await testGpu();
      for (const tileShape of [{ wgM: 8, wgN: 8, tileK: 32 }, { wgM: 16, wgN: 8, tileK: 8 }, { wgM: 8, wgN: 16, tileK: 16 }]) {
        expectPass(await checkMatmul(gpu, { M: 70, N: 75, K: 77, weights, variant: 'tiled', tileShape, norm: true, accumulate: true }, freshSeed()));
        expectPass(await checkMatmul(gpu, { M: 3, N: 130, K: 9, weights, variant: 'tiled', tileShape, bias: true }, freshSeed()));
      }
    });
    it(`bias and residual epilogue, tiled and matvec, ${weights}`, async () => {
      const gpu = await testGpu();
      expectPass(await checkMatmul(gpu, { M: 37, N: 61, K: 45, weights, bias: true, accumulate: true }, freshSeed()));
      expectPass(await checkMatmul(gpu, { M: 1, N: 61, K: 45, weights, bias: true, accumulate: true }, freshSeed()));
      expectPass(await checkMatmul(gpu, { M: 5, N: 33, K: 9, weights, bias: true }, freshSeed()));
    });
    it(`W split by rows across buffers, each part writing its columns of Y and the bias (tiled, matvec, vector matvec), ${weights}`, async () => {
      const gpu = await testGpu();
      const split = { N: 200, parts: [64, 64, 72], bias: true, accumulate: true };
      expectPass(await checkMatmul(gpu, { ...split, M: 37, K: 45, weights, variant: 'tiled', norm: true }, freshSeed()));
      expectPass(await checkMatmul(gpu, { ...split, M: 1, K: 45, weights, variant: 'matvec' }, freshSeed()));
      expectPass(await checkMatmul(gpu, { ...split, M: 2, K: 64, weights, variant: 'matvec', norm: true }, freshSeed()));
    });
  }
});

describe('batched matvec (a chunk of tokens, W unpacked once per workgroup of tokens) against the CPU reference', () => {
  const all = [...formats, 'q8', 'q4'] as const;
  for (const weights of all) {
    // Each case a pipeline that compiles for seconds on a CPU adapter: the default shape in the four
    // combinations a model runs (bias + residual, norm, SwiGLU + residual), the rest in small shapes.
    it(`default shape: token and row tails, fused norm and SwiGLU, bias and residual, a split W, ${weights}`, async () => {
      const gpu = await testGpu();
      // M and N not multiples of the tokens and rows per workgroup; K = 96, 352, 64: whole q4/q8 blocks, 352
      // (11) more than a lane's one step and not a multiple of the lanes.
      expectPass(await checkMatmul(gpu, { M: 7, N: 75, K: 96, weights, variant: 'batched', bias: true, accumulate: true }, freshSeed()));
      expectPass(await checkMatmul(gpu, { M: 13, N: 37, K: 352, weights, variant: 'batched', norm: true }, freshSeed()));
      expectPass(await checkMatmul(gpu, { M: 2, N: 41, K: 64, weights, variant: 'batched', swiglu: true, accumulate: true }, freshSeed()));
      expectPass(await checkMatmul(gpu, { M: 5, N: 200, K: 64, parts: [64, 64, 72], weights, variant: 'batched', bias: true, accumulate: true }, freshSeed()));
    });
    it(`small shapes and K it cannot step through (tiled instead), ${weights}`, async () => {
      const gpu = await testGpu();
      // K = 37 and 44: not whole steps of any format but f32 (44), so tiled for the rest.
      expectPass(await checkMatmul(gpu, { M: 9, N: 33, K: 37, weights, variant: 'batched', norm: true }, freshSeed()));
      expectPass(await checkMatmul(gpu, { M: 9, N: 33, K: 44, weights, variant: 'batched', swiglu: true }, freshSeed()));
      // Without subgroups 'batched' is the tiled kernel (above); a shape of its own is refused (below).
      if (!gpu.features.subgroups) return;
      const wg = Math.min(8, gpu.subgroupMinSize);
      expectPass(await checkMatmul(gpu, { M: 4, N: 33, K: 96, weights, variant: 'batched', batchShape: { wg, rows: 5, tokens: 3 }, norm: true, bias: true, accumulate: true }, freshSeed()));
      expectPass(await checkMatmul(gpu, { M: 11, N: 9, K: 64, weights, variant: 'batched', batchShape: { wg, rows: 3, tokens: 2 } }, freshSeed()));
    });
  }
  it('refuses shapes and reductions it cannot run', async () => {
    const gpu = await testGpu();
    const x = await createTensor(gpu, 'x', 'f32', [4, 32]);
    const w = await createTensor(gpu, 'w', 'f32', [8, 32]);
    const y = await createTensor(gpu, 'y', 'f32', [4, 8]);
    const wide = 2 * Math.max(1, gpu.subgroupMinSize);
    for (const batchShape of [{ wg: 4, rows: 4, tokens: 5 }, { wg: 4, rows: 65, tokens: 1 }, { wg: 4, rows: 64, tokens: 4 }, { wg: 3, rows: 4, tokens: 4 }, { wg: wide, rows: 4, tokens: 4 }]) {
      await expect(prepareMatmul(gpu, { x, w, y, variant: 'batched', batchShape })).rejects.toBeInstanceOf(ShapeError);
    }
    await expect(prepareMatmul(gpu, { x, w, y, variant: 'batched', reduce: 'workgroup' })).rejects.toBeInstanceOf(ShapeError);
    if (gpu.features.subgroups) expect((await prepareMatmul(gpu, { x, w, y, variant: 'batched' })).name).toBe('matvec-batch');
  });
});

describe('matmul output slices', () => {
  it('an output slice must start on a multiple of 64 within Y', async () => {
    const gpu = await testGpu();
    const x = await createTensor(gpu, 'x', 'f32', [1, 8]);
    const w = await createTensor(gpu, 'w', 'f32', [64, 8]);
    const y = await createTensor(gpu, 'y', 'f32', [1, 200]);
    await expect(prepareMatmul(gpu, { x, w, y, outputSlice: { column: 32, width: 200 } })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareMatmul(gpu, { x, w, y, outputSlice: { column: 192, width: 200 } })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareMatmul(gpu, { x, w, y, outputSlice: { column: 128, width: 199 } })).rejects.toBeInstanceOf(ShapeError);
    expect((await prepareMatmul(gpu, { x, w, y, outputSlice: { column: 128, width: 200 } })).name).toBe('matvec-vec');
  });
});

describe('vector matvec (K a multiple of the format step: 4 f32, 8 f16, 32 q8/q4) against the CPU reference', () => {
  const all = [...formats, 'q8', 'q4'] as const;
  for (const weights of all) {
    it(`whole steps, N not a multiple of the rows per workgroup, every tuner shape, ${weights}`, async () => {
      const gpu = await testGpu();
      // K = 96: three q blocks per row. Each shape once with N < rows per workgroup.
      for (const matvecShape of [{ wg: 32, rows: 8 }, { wg: 64, rows: 4 }, { wg: 256, rows: 3 }]) {
        expectPass(await checkMatmul(gpu, { M: 1, N: 1001, K: 96, weights, variant: 'matvec', matvecShape }, freshSeed()));
        expectPass(await checkMatmul(gpu, { M: 3, N: 2, K: 64, weights, variant: 'matvec', matvecShape }, freshSeed()));
      }
      // K a multiple of 8 but not 32, of 4 but not 8: vector for f32 (and f16), element by element otherwise.
      for (const s of [{ M: 1, N: 37, K: 40 }, { M: 2, N: 9, K: 12 }]) {
        expectPass(await checkMatmul(gpu, { ...s, weights, variant: 'matvec', bias: true }, freshSeed()));
      }
    });
    it(`fused RMSNorm and SwiGLU inputs, bias and residual, both reductions, ${weights}`, async () => {
      const gpu = await testGpu();
      const subgroupOrNot = gpu.features.subgroups ? 'subgroup' : 'workgroup';
      expectPass(await checkMatmul(gpu, { M: 1, N: 203, K: 160, weights, variant: 'matvec', reduce: 'workgroup', norm: true, bias: true }, freshSeed()));
      expectPass(await checkMatmul(gpu, { M: 1, N: 75, K: 96, weights, variant: 'matvec', reduce: subgroupOrNot, norm: true }, freshSeed()));
      expectPass(await checkMatmul(gpu, { M: 2, N: 75, K: 96, weights, variant: 'matvec', reduce: subgroupOrNot, swiglu: true, accumulate: true }, freshSeed()));
    });
  }
});
