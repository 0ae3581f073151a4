import { expect } from 'vitest';

/** softmax in float64; -Infinity entries get probability 0. */
export function softmax(logits: ArrayLike<number>): number[] {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const e = Array.from(logits, (l) => (l === -Infinity ? 0 : Math.exp(l - max)));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}

/** Logits whose softmax is `probs` (0 → -Infinity). */
export function logitsOf(probs: number[]): Float32Array {
  return Float32Array.from(probs, (p) => (p === 0 ? -Infinity : Math.log(p)));
}

export function expectProbs(logits: ArrayLike<number>, expected: number[], digits = 6): void {
  const got = softmax(logits);
  expect(got.length).toBe(expected.length);
  got.forEach((p, i) => expect(p, `p[${i}]`).toBeCloseTo(expected[i], digits));
}

/** The ids a truncation stage left as candidates. */
export function kept(logits: Float32Array): number[] {
  const ids: number[] = [];
  logits.forEach((l, i) => {
    if (l > -Infinity) ids.push(i);
  });
  return ids;
}
