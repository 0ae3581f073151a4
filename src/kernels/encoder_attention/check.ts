/** Checks encoder attention against its CPU reference on a packed batch, rows past the batch kept poisoned. */
import type { Gpu } from '../../gpu/device';
import { check, type CheckResult } from '../../selftest/compare';
import { destroyAll, poisoned, runAndRead, upload } from '../../selftest/harness';
import { createRng, randomNormal } from '../../util/random';
import { prepareEncoderAttention } from './encoder_attention';
import { encoderAttentionRef } from './reference';

export interface EncoderAttentionCase {
  nHeads: number;
  headDim: number;
  /** Sequence lengths of the call, packed in this order. */
  lengths: number[];
  /** Rows of qkv and out (default: the lengths' sum). */
  maxTokens?: number;
  /** Lengths of an earlier call on the same launch, to show that `setLengths` replaces them. */
  before?: number[];
  scale?: number;
}

export const ENCODER_ATTENTION_TOLERANCE = 1e-6;

export async function checkEncoderAttention(gpu: Gpu, c: EncoderAttentionCase, seed: number): Promise<CheckResult> {
  const rng = createRng(seed);
  const { nHeads, headDim } = c;
  const width = nHeads * headDim;
  const tokens = c.lengths.reduce((a, b) => a + b, 0);
  const maxTokens = c.maxTokens ?? tokens;
  // Rows past the batch hold NaN: a key or value read from them would spread it into the result.
  const data = new Float32Array(maxTokens * 3 * width).fill(NaN);
  data.set(randomNormal(rng, tokens * 3 * width, 2));
  const qkv = await upload(gpu, 'qkv', [maxTokens, 3 * width], data);
  const out = await poisoned(gpu, 'out', [maxTokens, width]);
  const op = await prepareEncoderAttention(gpu, { qkv, out, nHeads, headDim, scale: c.scale });
  if (c.before) op.setLengths(c.before);
  op.setLengths(c.lengths);
  const actual = await runAndRead(gpu, op.dispatches, out);
  op.dispose();
  destroyAll(qkv, out);

  // Rows the call must not write must still be NaN: NaN there counts as 0 and anything else as an infinite error.
  const valid = tokens * width;
  const seen = Float32Array.from(actual, (v, i) => (i < valid ? v : Number.isNaN(v) ? 0 : Infinity));
  const expected = new Float32Array(maxTokens * width);
  expected.set(encoderAttentionRef(data, c.lengths, nHeads, headDim, c.scale ?? 1 / Math.sqrt(headDim)));
  const name = `encoder attention lengths=[${c.lengths}] of ${maxTokens} heads=${nHeads} headDim=${headDim}${c.before ? ` after [${c.before}]` : ''}`;
  return check(name, seed, ENCODER_ATTENTION_TOLERANCE, seen, expected);
}
