import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../gpu/errors';
import { createTensor } from '../../gpu/tensor';
import { attentionPartialsShape, decodePaths, prepareAttention, validateAttentionStep, type AttentionArgs } from './attention';
import type { KvFormat } from './kv-format';
import { checkAttention, type AttentionCase } from './check';
import { expectPass, freshSeed, testGpu } from '../../../test/gpu';

describe('attention on the GPU against the CPU reference', () => {
  const cases: AttentionCase[] = [
    // First token of a sequence: a single key.
    { nHeads: 4, nKvHeads: 4, headDim: 64, maxContext: 16, T: 1, pos: 0 },
    { nHeads: 6, nKvHeads: 2, headDim: 64, maxContext: 200, T: 7, pos: 100 },
    { nHeads: 7, nKvHeads: 1, headDim: 80, maxContext: 130, T: 37, pos: 50 },
    // Prefill from an empty cache: row t sees t + 1 keys, less than a block for most rows.
    { nHeads: 6, nKvHeads: 2, headDim: 128, maxContext: 64, T: 37, pos: 0 },
    { nHeads: 3, nKvHeads: 3, headDim: 128, maxContext: 400, T: 1, pos: 300 },
    // Small heads (stories260K's 8: two vector units) and the largest.
    { nHeads: 21, nKvHeads: 3, headDim: 8, maxContext: 100, T: 7, pos: 70 },
    { nHeads: 2, nKvHeads: 2, headDim: 256, maxContext: 160, T: 7, pos: 129 },
    // The end of a long context.
    { nHeads: 3, nKvHeads: 1, headDim: 64, maxContext: 8192, T: 7, pos: 8192 - 7 },
    // Scores far beyond exp's f32 range: only max subtraction keeps them finite.
    { nHeads: 2, nKvHeads: 1, headDim: 64, maxContext: 300, T: 7, pos: 200, scale: 8 },
    // Prepared for a prefill chunk, then set() to a decode step: rows 1.. must stay untouched.
    { nHeads: 6, nKvHeads: 2, headDim: 64, maxContext: 128, T: 1, pos: 37, maxT: 37, preparedWith: { T: 37, pos: 0 } },
    // Prepared for decode at position 0 (one split), then set() far on (many splits) and back.
    { nHeads: 8, nKvHeads: 1, headDim: 64, maxContext: 1000, T: 1, pos: 700, minSplit: 64, preparedWith: { T: 1, pos: 0 } },
    { nHeads: 8, nKvHeads: 1, headDim: 64, maxContext: 1000, T: 1, pos: 3, minSplit: 64, preparedWith: { T: 1, pos: 900 } },
    // Decode in many splits into a scratch the caller passes (a model's layers share one).
    { nHeads: 6, nKvHeads: 2, headDim: 80, maxContext: 2000, T: 1, pos: 1777, minSplit: 64, sharedPartials: true },
    // A short chunk with one token's rows per workgroup (the GQA group, as the short-chunk plan asks): one
    // workgroup per token and KV head, after cached positions and from an empty cache.
    { nHeads: 6, nKvHeads: 2, headDim: 64, maxContext: 100, T: 13, pos: 41, maxT: 31, maxRows: 3 },
    { nHeads: 8, nKvHeads: 2, headDim: 8, maxContext: 64, T: 31, pos: 0, maxRows: 4 },
  ];
  for (const c of cases) {
    const extra = `${c.scale ? ` scale ${c.scale}` : ''}${c.preparedWith ? ' after set()' : ''}`;
    it(`T=${c.T} pos=${c.pos} heads ${c.nHeads}/${c.nKvHeads} headDim ${c.headDim} context ${c.maxContext}${extra}`, async () => {
      expectPass(await checkAttention(await testGpu(), c, freshSeed()));
    });
  }
});

describe('sliding-window attention on the GPU against the CPU reference', () => {
  const cases: AttentionCase[] = [
    // Prefill across the window boundary: early rows see everything before them, later ones only the window.
    { nHeads: 6, nKvHeads: 2, headDim: 64, maxContext: 200, T: 37, pos: 0, window: 13 },
    // A chunk after cached positions, its rows' windows starting at different places; a window of one key.
    { nHeads: 4, nKvHeads: 1, headDim: 32, maxContext: 300, T: 29, pos: 150, window: 70 },
    { nHeads: 3, nKvHeads: 3, headDim: 16, maxContext: 100, T: 9, pos: 40, window: 1 },
    // Decode in splits over the window only, with its start inside a block; the window not yet filled.
    { nHeads: 8, nKvHeads: 2, headDim: 64, maxContext: 1000, T: 1, pos: 900, window: 333, minSplit: 64, kv: 'f16-packed' },
    { nHeads: 8, nKvHeads: 2, headDim: 64, maxContext: 1000, T: 1, pos: 200, window: 333, minSplit: 64 },
    // Prepared for a chunk at 0, then set() to decode far past the window.
    { nHeads: 6, nKvHeads: 2, headDim: 64, maxContext: 600, T: 1, pos: 555, maxT: 16, window: 100, minSplit: 64, preparedWith: { T: 16, pos: 0 } },
  ];
  for (const c of cases) {
    it(`window ${c.window}: T=${c.T} pos=${c.pos} heads ${c.nHeads}/${c.nKvHeads} headDim ${c.headDim}${c.preparedWith ? ' after set()' : ''}`, async () => {
      expectPass(await checkAttention(await testGpu(), c, freshSeed()));
    });
  }
  it('rejects a negative or fractional window', async () => {
    const gpu = await testGpu();
    const t = (label: string, shape: number[]) => createTensor(gpu, label, 'f32', shape);
    const base = { q: await t('q', [1, 2, 8]), kCache: await t('k', [1, 16, 8]), vCache: await t('v', [1, 16, 8]), out: await t('out', [1, 2, 8]) };
    for (const window of [-1, 2.5]) {
      await expect(prepareAttention(gpu, { ...base, nHeads: 2, nKvHeads: 1, headDim: 8, maxContext: 16, T: 1, pos: 0, window })).rejects.toBeInstanceOf(ShapeError);
    }
  });
});

describe('attention across head sizes, GQA ratios and KV formats', () => {
  // headDim × group pairs covering 64/80/96/128/256 and GQA ratios 1/3/7/8; the KV format rotates through them.
  const shapes = [
    { headDim: 64, group: 8 },
    { headDim: 80, group: 3 },
    { headDim: 96, group: 7 },
    { headDim: 128, group: 1 },
    { headDim: 256, group: 8 },
  ];
  const formats: KvFormat[] = ['f32', 'f16-packed'];
  for (const [i, { headDim, group }] of shapes.entries()) {
    const nKvHeads = 2;
    const nHeads = group * nKvHeads;
    for (const kv of formats) {
      // Decode at a context that is no multiple of the 64-key split: 13 splits, the last of 10 keys.
      it(`decode headDim ${headDim} GQA ${group} context 778 in splits, ${kv} KV`, async () => {
        const c = { nHeads, nKvHeads, headDim, maxContext: 1000, T: 1, pos: 777, minSplit: 64, kv };
        expectPass(await checkAttention(await testGpu(), c, freshSeed()));
      });
      // Causal prefill with an odd T, from an empty cache and after cached positions.
      it(`prefill headDim ${headDim} GQA ${group} T=29, ${kv} KV`, async () => {
        const c = { nHeads, nKvHeads, headDim, maxContext: 200, T: 29, pos: i * 37, kv };
        expectPass(await checkAttention(await testGpu(), c, freshSeed()));
      });
    }
  }
  // Native f16 (shader-f16; packed is the default): lavapipe takes minutes on this kernel's vec4<f16> loads, so
  // this runs on the devices that have the feature otherwise (real GPUs).
  it.skipIf(process.env.WEBGPU_LLM_ADAPTER === 'lavapipe')('native f16 KV: decode in splits and a prefill', async () => {
    const gpu = await testGpu();
    if (!gpu.features.shaderF16) return;
    expectPass(await checkAttention(gpu, { nHeads: 6, nKvHeads: 2, headDim: 64, maxContext: 200, T: 1, pos: 150, minSplit: 64, kv: 'f16' }, freshSeed()));
    expectPass(await checkAttention(gpu, { nHeads: 6, nKvHeads: 2, headDim: 64, maxContext: 200, T: 9, pos: 20, kv: 'f16' }, freshSeed()));
  });
});

describe('both decode kernels (the subgroup one where the device has subgroups)', () => {
  // The other tests run the device's default decode kernel; these run each one it has, on the shapes where
  // their layouts differ: lanes over the head dims with a tail (80 = 20 units), query heads in several
  // uneven chunks (group 7, 12, 16), the fewest rows per workgroup (headDim 256), windows and splits.
  const cases: AttentionCase[] = [
    { nHeads: 32, nKvHeads: 4, headDim: 64, maxContext: 1000, T: 1, pos: 777, minSplit: 64, kv: 'f16-packed' },
    { nHeads: 16, nKvHeads: 1, headDim: 64, maxContext: 400, T: 1, pos: 300 },
    { nHeads: 24, nKvHeads: 2, headDim: 128, maxContext: 600, T: 1, pos: 500, kv: 'f16-packed', sharedPartials: true },
    { nHeads: 6, nKvHeads: 2, headDim: 256, maxContext: 200, T: 1, pos: 150, minSplit: 64 },
    { nHeads: 14, nKvHeads: 2, headDim: 80, maxContext: 1200, T: 1, pos: 1000, window: 300, minSplit: 64, kv: 'f16-packed' },
    { nHeads: 3, nKvHeads: 3, headDim: 96, maxContext: 50, T: 1, pos: 0 },
    { nHeads: 8, nKvHeads: 1, headDim: 64, maxContext: 300, T: 1, pos: 250, scale: 8 },
    { nHeads: 8, nKvHeads: 2, headDim: 64, maxContext: 1000, T: 1, pos: 900, minSplit: 64, preparedWith: { T: 1, pos: 0 } },
  ];
  for (const c of cases) {
    const extra = `${c.window ? ` window ${c.window}` : ''}${c.scale ? ` scale ${c.scale}` : ''}${c.preparedWith ? ' after set()' : ''}`;
    it(`pos=${c.pos} heads ${c.nHeads}/${c.nKvHeads} headDim ${c.headDim} ${c.kv ?? 'f32'} KV${extra}`, async () => {
      const gpu = await testGpu();
      for (const decodePath of decodePaths(gpu, c.headDim)) {
        expectPass(await checkAttention(gpu, { ...c, decodePath }, freshSeed()));
      }
    });
  }
});

describe('attention rejects bad shapes before any GPU work', () => {
  const args = async (o: { headDim?: number; nHeads?: number; nKvHeads?: number; T?: number; pos?: number; cacheContext?: number } = {}): Promise<AttentionArgs> => {
    const gpu = await testGpu();
    const { headDim = 64, nHeads = 4, nKvHeads = 2, T = 4, pos = 0 } = o;
    const maxContext = 32;
    const cacheShape = [nKvHeads, o.cacheContext ?? maxContext, headDim];
    return {
      q: await createTensor(gpu, 'q', 'f32', [4, nHeads, headDim]),
      kCache: await createTensor(gpu, 'kCache', 'f32', cacheShape),
      vCache: await createTensor(gpu, 'vCache', 'f32', cacheShape),
      out: await createTensor(gpu, 'out', 'f32', [4, nHeads, headDim]),
      nHeads,
      nKvHeads,
      headDim,
      maxContext,
      T,
      pos,
    };
  };
  const rejects = async (a: AttentionArgs) => {
    await expect(prepareAttention(await testGpu(), a)).rejects.toBeInstanceOf(ShapeError);
  };

  it('accepts the baseline shape', async () => {
    await expect(prepareAttention(await testGpu(), await args())).resolves.toBeDefined();
  });
  it('headDim over 256', async () => rejects(await args({ headDim: 300 })));
  it('maxRows not a positive integer', async () => {
    const base = await args();
    await rejects({ ...base, maxRows: 0 });
    await rejects({ ...base, maxRows: 2.5 });
  });
  it('headDim not a multiple of 4', async () => rejects(await args({ headDim: 98 })));
  it('nHeads not a multiple of nKvHeads', async () => rejects(await args({ nHeads: 6, nKvHeads: 4 })));
  it('pos + T past maxContext', async () => rejects(await args({ pos: 29 })));
  it('T over the rows of q, or zero', async () => {
    await rejects(await args({ T: 5 }));
    await rejects(await args({ T: 0 }));
  });
  it('cache of the wrong size', async () => rejects(await args({ cacheContext: 31 })));
  it('a partials scratch too small for the splits', async () => {
    const gpu = await testGpu();
    const t = (label: string, shape: number[]) => createTensor(gpu, label, 'f32', shape);
    const [nHeads, nKvHeads, headDim, maxContext] = [4, 2, 64, 256];
    const a: AttentionArgs = {
      q: await t('q', [1, nHeads, headDim]),
      kCache: await t('k', [nKvHeads, maxContext, headDim]),
      vCache: await t('v', [nKvHeads, maxContext, headDim]),
      out: await t('out', [1, nHeads, headDim]),
      nHeads, nKvHeads, headDim, maxContext, T: 1, pos: 200, minSplit: 64,
    };
    await rejects({ ...a, partials: await t('partials', [8, 4]) });
    await expect(prepareAttention(gpu, { ...a, partials: await t('partials', attentionPartialsShape(nHeads, headDim)) })).resolves.toBeDefined();
  });
  it('out aliasing q', async () => {
    const a = await args();
    await rejects({ ...a, out: a.q });
  });
  it('validateAttentionStep checks a step before set()', () => {
    expect(() => validateAttentionStep(4, 32, 4, 28)).not.toThrow();
    expect(() => validateAttentionStep(4, 32, 4, 29)).toThrow(ShapeError);
    expect(() => validateAttentionStep(4, 32, 5, 0)).toThrow(ShapeError);
    expect(() => validateAttentionStep(4, 32, 1, -1)).toThrow(ShapeError);
  });
});
