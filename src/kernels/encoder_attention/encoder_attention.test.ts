import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../gpu/errors';
import { acquireNodeGpu } from '../../gpu/node';
import { createTensor } from '../../gpu/tensor';
import { expectPass, freshSeed, testGpu } from '../../../test/gpu';
import { checkEncoderAttention, type EncoderAttentionCase } from './check';
import { prepareEncoderAttention } from './encoder_attention';

/**
 * Lengths cross the 16-row blocks and the 64-key steps (1, 15, 17, 64, 65, 130). Head widths 32 and 64 (MiniLM's
 * and BERT-base's) and 96 (24 units, which do not divide the 64 threads); each width is one pipeline to compile,
 * which lavapipe takes tens of seconds for, so the cases share them.
 */
const cases: EncoderAttentionCase[] = [
  { nHeads: 1, headDim: 32, lengths: [1] },
  { nHeads: 3, headDim: 32, lengths: [7, 1, 17, 65] },
  { nHeads: 2, headDim: 64, lengths: [130, 15], maxTokens: 160 },
  { nHeads: 2, headDim: 96, lengths: [64, 3, 33] },
  { nHeads: 4, headDim: 32, lengths: [5, 5], maxTokens: 50, before: [20, 20, 10] },
  { nHeads: 2, headDim: 32, lengths: [12], scale: 0.05 },
];

describe('encoder attention on the GPU against the CPU reference', () => {
  for (const c of cases) {
    it(`heads ${c.nHeads} × ${c.headDim}, lengths [${c.lengths}]${c.maxTokens ? ` of ${c.maxTokens} rows` : ''}${c.before ? ` after [${c.before}]` : ''}`, async () => {
      expectPass(await checkEncoderAttention(await testGpu(), c, freshSeed()));
    });
  }

  it('heads 1 × 256, lengths [11,12,23], on a device with the default 16 KiB of workgroup memory (fewer rows per block)', async () => {
    const gpu = await acquireNodeGpu({ defaultLimits: true });
    try {
      expect(gpu.device.limits.maxComputeWorkgroupStorageSize).toBe(16384);
      expectPass(await checkEncoderAttention(gpu, { nHeads: 1, headDim: 256, lengths: [11, 12, 23] }, freshSeed()));
    } finally {
      gpu.device.destroy();
    }
  });
});

describe('encoder attention rejects bad inputs', () => {
  it('shapes, head widths and lengths', async () => {
    const gpu = await testGpu();
    const qkv = await createTensor(gpu, 'qkv', 'f32', [8, 3 * 16]);
    const out = await createTensor(gpu, 'out', 'f32', [8, 16]);
    await expect(prepareEncoderAttention(gpu, { qkv, out, nHeads: 2, headDim: 6 })).rejects.toBeInstanceOf(ShapeError);
    await expect(prepareEncoderAttention(gpu, { qkv, out: await createTensor(gpu, 'out', 'f32', [8, 12]), nHeads: 2, headDim: 8 })).rejects.toBeInstanceOf(ShapeError);
    const op = await prepareEncoderAttention(gpu, { qkv, out, nHeads: 2, headDim: 8 });
    expect(() => op.setLengths([5, 4])).toThrow(ShapeError);
    expect(() => op.setLengths([3, 0])).toThrow(ShapeError);
    expect(() => op.setLengths([2.5])).toThrow(ShapeError);
    op.dispose();
  });
});
