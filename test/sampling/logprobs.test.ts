import { describe, expect, it } from 'vitest';
import { LogprobsComputer, logSumExp } from '../../src/sampling/logprobs';
import { createRng, freshSeed } from '../../src/util/random';

describe('LogprobsComputer', () => {
  it('gives a distribution over the finite logits: exp sums to 1, best first, masked tokens absent', () => {
    const seed = freshSeed();
    const rng = createRng(seed);
    const V = 1001;
    const logits = Float32Array.from({ length: V }, () => (rng.next() < 0.1 ? -Infinity : 30 * rng.next() - 15));
    const chosen = logits.findIndex((l) => l > -Infinity);
    const step = new LogprobsComputer(V).compute(logits, chosen);
    const finite = logits.filter((l) => l > -Infinity).length;
    expect(step.top, `seed ${seed}`).toHaveLength(finite);
    const sum = step.top.reduce((s, t) => s + Math.exp(t.logprob), 0);
    expect(Math.abs(sum - 1), `seed ${seed}`).toBeLessThanOrEqual(1e-4);
    for (let i = 1; i < step.top.length; i++) expect(step.top[i].logprob).toBeLessThanOrEqual(step.top[i - 1].logprob);
    expect(step.logprob).toBeCloseTo(step.top.find((t) => t.id === chosen)!.logprob, 12);
  });

  it('keeps only the requested alternatives, ties to the lower id', () => {
    const step = new LogprobsComputer(2).compute(Float32Array.of(1, 3, 3, 2), 0);
    expect(step.top.map((t) => t.id)).toEqual([1, 2]);
    expect(step.logprob).toBeCloseTo(1 - Math.log(Math.exp(1) + 2 * Math.exp(3) + Math.exp(2)), 6);
    expect(logSumExp(Float32Array.of(-Infinity, -Infinity))).toBe(-Infinity);
  });
});
