/** Checks the mask_logits kernel against its CPU reference, bit for bit. */
import type { Gpu } from '../../gpu/device';
import { uploadTensor } from '../../gpu/tensor';
import type { CheckResult } from '../../selftest/compare';
import { destroyAll, runAndRead, upload } from '../../selftest/harness';
import { createRng, randomNormal } from '../../util/random';
import { prepareMaskLogits } from './mask_logits';
import { maskLogitsRef } from './reference';

export interface MaskLogitsCase {
  V: number;
  /** Distinct ids to mask, 1 ≤ count ≤ V; the first and (count ≥ 2) the last id are among them. */
  count: number;
}

/**
 * mask_logits on a row of random logits, with NaN planted at half the masked ids (a padded row's garbage
 * must not leak) and at no other: masked ids must read -Infinity and every other logit its own bits.
 */
export async function checkMaskLogits(gpu: Gpu, c: MaskLogitsCase, seed: number): Promise<CheckResult> {
  const rng = createRng(seed);
  const { V, count } = c;
  const chosen = new Set([0, V - 1].slice(0, count));
  while (chosen.size < count) chosen.add(rng.int(V));
  // In random order (Fisher-Yates), so threads do not write in id order.
  const ids = Uint32Array.from(chosen);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  const data = randomNormal(rng, V, 3);
  for (let i = 0; i < count; i += 2) data[ids[i]] = NaN;

  const logits = await upload(gpu, 'logits', [1, V], data);
  const idTensor = await uploadTensor(gpu, 'masked ids', 'u32', [count], ids);
  const op = await prepareMaskLogits(gpu, { logits, ids: idTensor });
  const actual = new Uint32Array((await runAndRead(gpu, [op], logits)).buffer);
  destroyAll(logits, idTensor);

  const expected = new Uint32Array(maskLogitsRef(data, ids).buffer);
  const name = `mask_logits V=${V} count=${count}`;
  const exact = { name, seed, tolerance: 0, nmse: 0, maxAbsError: 0, worstIndex: -1, passed: true };
  for (let i = 0; i < V; i++) {
    if (actual[i] !== expected[i]) {
      const show = (bits: number) => new Float32Array(new Uint32Array([bits]).buffer)[0];
      const detail = `logit ${i}${chosen.has(i) ? ' (masked)' : ''} is ${show(actual[i])}, expected ${show(expected[i])}`;
      return { ...exact, name: `${name}: ${detail}`, nmse: Infinity, worstIndex: i, passed: false };
    }
  }
  return exact;
}
