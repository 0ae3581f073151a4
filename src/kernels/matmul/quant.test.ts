/**
 * matmul (tiled) and matvec on q8/q4 weights: against the CPU reference on the dequantized weights, so
 * the kernels' arithmetic is checked at the f32 tolerance, plus an exact check of what `load_w` decodes.
 */
import { describe, expect, it } from 'vitest';
import { runDispatches } from '../../gpu/dispatch';
import { ShapeError } from '../../gpu/errors';
import { createTensor, readTensor, uploadTensor } from '../../gpu/tensor';
import { prepareMatmul } from './matmul';
import { QUANT_RANGE, blockScales, dequantize, quantize, type QuantDType } from '../../quant/quantize';
import { compare } from '../../selftest/compare';
import { destroyAll, poisoned, upload } from '../../selftest/harness';
import { checkMatmul } from './check';
import { createRng, randomNormal } from '../../util/random';
import { expectPass, freshSeed, testGpu } from '../../../test/gpu';

const DTYPES: QuantDType[] = ['q8', 'q4'];

/**
 * Every M, N and K of the brief appears; K = 19, 83, 130 make blocks span rows. The last shape runs tiled
 * only: matvec launches a workgroup per output, 150k of them, which takes SwiftShader ~10 s.
 */
const SHAPES = [
  { M: 1, N: 1000, K: 19 },
  { M: 1, N: 4097, K: 64 },
  { M: 1, N: 1000, K: 130 },
  { M: 7, N: 1000, K: 83 },
  { M: 7, N: 4097, K: 19 },
  { M: 37, N: 1000, K: 64 },
  { M: 37, N: 4097, K: 130, tiledOnly: true },
];

describe('matmul on quantized weights against the CPU reference on the dequantized weights', () => {
  for (const weights of DTYPES) {
    for (const { tiledOnly, ...s } of SHAPES) {
      for (const variant of tiledOnly ? (['tiled'] as const) : (['tiled', 'matvec'] as const)) {
        it(`${variant} ${s.M}x${s.N}x${s.K} ${weights}`, async () => {
          expectPass(await checkMatmul(await testGpu(), { ...s, weights, variant }, freshSeed()));
        });
      }
    }
    it(`fused inputs (RMSNorm, SwiGLU), tiled and matvec, ${weights}`, async () => {
      const gpu = await testGpu();
      for (const variant of ['tiled', 'matvec'] as const) {
        expectPass(await checkMatmul(gpu, { M: variant === 'tiled' ? 67 : 1, N: 97, K: 83, weights, variant, norm: true }, freshSeed()));
        expectPass(await checkMatmul(gpu, { M: variant === 'tiled' ? 5 : 1, N: 61, K: 45, weights, variant, swiglu: true, accumulate: true }, freshSeed()));
      }
    });
    it(`W split by rows across buffers, each part writing its columns of Y, tiled and matvec, ${weights}`, async () => {
      const gpu = await testGpu();
      // K = 83: blocks span rows within each part, which is quantized on its own.
      expectPass(await checkMatmul(gpu, { M: 7, N: 300, K: 83, weights, variant: 'tiled', parts: [128, 128, 44], bias: true, accumulate: true, norm: true }, freshSeed()));
      expectPass(await checkMatmul(gpu, { M: 1, N: 300, K: 64, weights, variant: 'matvec', parts: [64, 236], bias: true, accumulate: true }, freshSeed()));
    });
    it(`bias and residual epilogue, tiled and matvec, ${weights}`, async () => {
      const gpu = await testGpu();
      expectPass(await checkMatmul(gpu, { M: 37, N: 61, K: 45, weights, bias: true, accumulate: true, variant: 'tiled' }, freshSeed()));
      expectPass(await checkMatmul(gpu, { M: 1, N: 61, K: 45, weights, bias: true, accumulate: true, variant: 'matvec' }, freshSeed()));
    });
  }
});

describe('load_w decodes q8/q4 exactly', () => {
  for (const dtype of DTYPES) {
    it(`${dtype}: identity · Wᵀ returns every dequantized weight bit for bit (zero, tiny, negative-scale blocks)`, async () => {
      const gpu = await testGpu();
      const seed = freshSeed();
      const N = 37;
      const K = 83;
      const data = randomNormal(createRng(seed), N * K);
      data.fill(0, 32, 96); // two all-zero blocks (scale 0)
      for (let i = 96; i < 128; i++) data[i] *= 1e-6; // a subnormal f16 scale
      // Block 4 reaches both ends of the range with scale -1: its extreme is positive, stored as the lone min.
      const { min, max } = QUANT_RANGE[dtype];
      for (let j = 0; j < 32; j++) data[128 + j] = -(j === 0 ? min : j === 1 ? max : min + ((5 * j) % (max - min + 1)));
      const words = quantize(dtype, data, [N, K]);
      expect(blockScales(dtype, words, N * K)[4]).toBe(-1);
      const expected = dequantize(dtype, words, [N, K]);

      // Y = I · Wᵀ: each output is one weight times 1 plus exact zeros, so any decoding error shows.
      const eye = new Float32Array(K * K);
      for (let k = 0; k < K; k++) eye[k * K + k] = 1;
      const x = await upload(gpu, 'x', [K, K], eye);
      const w = await uploadTensor(gpu, 'w', dtype, [N, K], words);
      const y = await poisoned(gpu, 'y', [K, N]);
      runDispatches(gpu, [await prepareMatmul(gpu, { x, w, y, variant: 'tiled' })]);
      const got = await readTensor(gpu, y);
      destroyAll(x, w, y);

      const transposed = new Float32Array(K * N);
      for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) transposed[k * N + n] = expected[n * K + k];
      const c = compare(got, transposed);
      expect(c.maxAbsError, `worst index ${c.worstIndex}, seed ${seed}`).toBe(0);
    });
  }

  it('refuses a quantized weight buffer too small for its shape', async () => {
    const gpu = await testGpu();
    // 37×83 = 3071 elements need 96 blocks; a buffer sized for 3071/32 rounded down holds 95.
    const w = await createTensor(gpu, 'w', 'q8', [1, 3040]);
    const x = await createTensor(gpu, 'x', 'f32', [1, 3071]);
    const y = await createTensor(gpu, 'y', 'f32', [1, 1]);
    await expect(prepareMatmul(gpu, { x, w: { ...w, shape: [1, 3071] }, y })).rejects.toBeInstanceOf(ShapeError);
    await expect(uploadTensor(gpu, 'w', 'q4', [37, 83], new Uint32Array(95 * 5))).rejects.toBeInstanceOf(ShapeError);
    destroyAll(w, x, y);
  });
});
