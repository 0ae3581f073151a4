import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../gpu/errors';
import { createTensor, readBuffer } from '../../gpu/tensor';
import { expectPass, freshSeed, testGpu } from '../../../test/gpu';
import { checkQuantize, type QuantizeCase } from './check';
import { createQuantizeStatus, QuantizeDispatch, quantizeFailure } from './quantize';

/** Odd counts end in a partial block, or in a lone block whose pair has no second; slices of 64 and more. */
const cases: QuantizeCase[] = (['q8', 'q4'] as const).flatMap((dtype) => [
  { dtype, count: 1, slice: 64, values: 'gaussian' as const },
  { dtype, count: 33, slice: 64, values: 'gaussian' as const },
  { dtype, count: 4097, slice: 4096, values: 'gaussian' as const },
  { dtype, count: 50_000 + 17, slice: 1024, values: 'gaussian' as const },
  { dtype, count: 40_000 + 3, slice: 640, values: 'adversarial' as const },
]);

describe('quantize on the GPU against the CPU quantizer, block by block', () => {
  for (const c of cases) {
    it(`${c.dtype} ${c.values}, ${c.count} elements in slices of ${c.slice}`, async () => {
      const r = await checkQuantize(await testGpu(), c, freshSeed());
      expectPass(r);
      // The same algorithm: blocks differ only where two candidates nearly tie (measured: ~1 in 4000).
      expect(r.blocks - r.identical, r.name).toBeLessThanOrEqual(Math.max(1, r.blocks / 100));
    });
  }
});

describe('quantize reports and refuses bad input', () => {
  it('a slice holding an infinity or NaN lowers the status to its slot', async () => {
    const gpu = await testGpu();
    const out = await createTensor(gpu, 'q', 'q4', [3, 64]);
    const input = gpu.device.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    const status = await createQuantizeStatus(gpu);
    const halves = new Uint16Array(128).fill(0x3c00);
    const ops = [await QuantizeDispatch.create(gpu, { input, out, status, slot: 9 }), await QuantizeDispatch.create(gpu, { input, out, status, slot: 4 })];
    gpu.device.queue.writeBuffer(input, 0, halves);
    ops[0].run(0, 128);
    halves[77] = 0x7e00; // NaN
    gpu.device.queue.writeBuffer(input, 0, halves);
    ops[0].run(64, 128);
    expect(quantizeFailure(new Uint32Array(await readBuffer(gpu, status)))).toBe(9);
    halves[77] = 0xfc00; // −infinity
    gpu.device.queue.writeBuffer(input, 0, halves);
    ops[1].run(0, 128);
    expect(quantizeFailure(new Uint32Array(await readBuffer(gpu, status)))).toBe(4);
    for (const op of ops) op.dispose();
    for (const b of [out.buffer, input, status]) b.destroy();
  });

  it('slices off the 64-element grid, past the tensor or the input, and non-quantized outputs', async () => {
    const gpu = await testGpu();
    const out = await createTensor(gpu, 'q', 'q8', [5, 40]);
    const input = gpu.device.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    const status = await createQuantizeStatus(gpu);
    const op = await QuantizeDispatch.create(gpu, { input, out, status, slot: 0 });
    expect(() => op.run(32, 64)).toThrow(ShapeError);
    expect(() => op.run(0, 100)).toThrow(ShapeError);
    expect(() => op.run(192, 64)).toThrow(ShapeError);
    expect(() => op.run(0, 0)).toThrow(ShapeError);
    const big = await createTensor(gpu, 'q', 'q8', [4, 256]);
    const tooSmall = await QuantizeDispatch.create(gpu, { input, out: big, status, slot: 0 });
    expect(() => tooSmall.run(0, 192)).toThrow(ShapeError);
    const f16 = await createTensor(gpu, 'f', 'f16', [4, 64]);
    await expect(QuantizeDispatch.create(gpu, { input, out: f16, status, slot: 0 })).rejects.toBeInstanceOf(ShapeError);
    op.dispose();
    tooSmall.dispose();
    for (const b of [out.buffer, big.buffer, f16.buffer, input, status]) b.destroy();
  });
});
