import { describe, expect, it } from 'vitest';
import { createRng, freshSeed, randomNormal } from '../../src/util/random';
import { resolveSamplingOptions, type SamplingOptions } from '../../src/sampling/options';
import { greedyToken, NoCandidateTokenError, Sampler, sampleToken, seedToUint32 } from '../../src/sampling/sampler';
import { logitsOf } from './helpers';

const V = 8;
const resolve = (options: SamplingOptions, vocabSize = V) => resolveSamplingOptions(options, null, { vocabSize });

/** Draws n tokens, each from a fresh copy of `logits` (the sampler rewrites them in place). */
function draw(sampler: Sampler, logits: Float32Array, n: number): number[] {
  return Array.from({ length: n }, () => sampler.sample(Float32Array.from(logits)));
}

/** Pearson's χ² of observed counts against expected probabilities (zero-probability cells must be empty). */
function chiSquare(counts: number[], probs: number[]): number {
  const n = counts.reduce((a, b) => a + b, 0);
  let chi = 0;
  probs.forEach((p, i) => {
    if (p === 0) expect(counts[i], `token ${i} has probability 0`).toBe(0);
    else chi += (counts[i] - n * p) ** 2 / (n * p);
  });
  return chi;
}

function histogram(tokens: number[], size: number): number[] {
  const counts = new Array<number>(size).fill(0);
  for (const t of tokens) counts[t]++;
  return counts;
}

describe('sampleToken', () => {
  it('walks the cumulative distribution', () => {
    // probs [0.2, 0.5, 0.3]: cumulative 0.2, 0.7, 1.0; u lands in the first cell it is below.
    const logits = logitsOf([0.2, 0.5, 0.3]);
    expect(sampleToken(logits, 0)).toBe(0);
    expect(sampleToken(logits, 0.1)).toBe(0);
    expect(sampleToken(logits, 0.3)).toBe(1);
    expect(sampleToken(logits, 0.69)).toBe(1);
    expect(sampleToken(logits, 0.71)).toBe(2);
    expect(sampleToken(logits, 0.999999)).toBe(2);
  });

  it('never picks a -Infinity or NaN token', () => {
    const logits = Float32Array.from([-Infinity, NaN, 0.5, -Infinity]);
    for (const u of [0, 0.5, 0.9999]) expect(sampleToken(logits, u)).toBe(2);
  });

  it('throws a typed error when nothing is finite', () => {
    expect(() => sampleToken(Float32Array.from([-Infinity, NaN]), 0.5)).toThrow(NoCandidateTokenError);
    expect(() => greedyToken(Float32Array.from([-Infinity]))).toThrow(NoCandidateTokenError);
  });
});

describe('Sampler', () => {
  const rng = createRng(12345);
  const logits = randomNormal(rng, V, 1.5);

  it('is reproducible: same seed, same 100 samples; another seed differs', () => {
    const a = draw(new Sampler(resolve({ seed: 42 })), logits, 100);
    const b = draw(new Sampler(resolve({ seed: 42 })), logits, 100);
    const c = draw(new Sampler(resolve({ seed: 43 })), logits, 100);
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
    expect(new Set(a).size).toBeGreaterThan(1);
  });

  it('draws a fresh seed when none is given', () => {
    const s1 = resolve({}).seed;
    const s2 = resolve({}).seed;
    expect(Number.isSafeInteger(s1)).toBe(true);
    expect(s1).not.toBe(s2);
  });

  it('seeds beyond 32 bits stay distinct', () => {
    expect(seedToUint32(7)).toBe(7);
    expect(seedToUint32(7 + 2 ** 32)).not.toBe(7);
    expect(seedToUint32(-1)).not.toBe(seedToUint32(2 ** 32 - 1));
    const a = draw(new Sampler(resolve({ seed: 5 })), logits, 50);
    const b = draw(new Sampler(resolve({ seed: 5 + 2 ** 32 })), logits, 50);
    expect(a).not.toEqual(b);
  });

  it('matches the distribution (χ² over 20,000 draws)', () => {
    const probs = [0.1, 0.2, 0.3, 0.05, 0.35];
    const tokens = draw(new Sampler(resolve({ seed: 2024 }, 5)), logitsOf(probs), 20000);
    // 4 degrees of freedom: P(χ² > 18.5) = 0.001. The seed is fixed, so this either always passes or never.
    expect(chiSquare(histogram(tokens, 5), probs)).toBeLessThan(18.5);
  });

  it('matches the truncated, tempered distribution through the pipeline', () => {
    // probs [0.1, 0.2, 0.3, 0.05, 0.35] at T = 0.5 → weights p² = [0.01, 0.04, 0.09, 0.0025, 0.1225];
    // top_k 3 keeps ids 1, 2, 4: [0.04, 0.09, 0.1225] / 0.2525.
    const probs = [0.1, 0.2, 0.3, 0.05, 0.35];
    const sampler = new Sampler(resolve({ seed: 7, temperature: 0.5, top_k: 3 }, 5));
    const tokens = draw(sampler, logitsOf(probs), 20000);
    const z = 0.04 + 0.09 + 0.1225;
    // 2 degrees of freedom: P(χ² > 13.8) = 0.001.
    expect(chiSquare(histogram(tokens, 5), [0, 0.04 / z, 0.09 / z, 0, 0.1225 / z])).toBeLessThan(13.8);
  });

  it('is greedy at temperature 0: argmax, lowest id on ties, whatever the seed', () => {
    const tied = Float32Array.from([0, 3, 1, 3]);
    for (const seed of [1, 2, 3]) {
      expect(draw(new Sampler(resolve({ seed, temperature: 0 })), tied, 5)).toEqual([1, 1, 1, 1, 1]);
    }
  });

  it('feeds its own choices back into the penalties', () => {
    // Greedy with repetition_penalty 2 on fixed logits [2, 1.9, 0]:
    // step 1 picks 0; step 2: id0 → 2/2 = 1 < 1.9 → picks 1; step 3: [1, 0.95, 0] → picks 0.
    const sampler = new Sampler(resolve({ temperature: 0, repetition_penalty: 2 }));
    expect(draw(sampler, Float32Array.from([2, 1.9, 0]), 3)).toEqual([0, 1, 0]);
    expect(sampler.history.generated).toEqual([0, 1, 0]);
  });

  it('penalizes prompt tokens for repetition_penalty but not for presence_penalty', () => {
    // Prompt [0], logits [2, 1.5, 0]: repetition_penalty 2 halves id0 to 1 < 1.5; presence_penalty skips it.
    const pick = (options: SamplingOptions) =>
      new Sampler(resolve(options), [0]).sample(Float32Array.from([2, 1.5, 0]));
    expect(pick({ temperature: 0, repetition_penalty: 2 })).toBe(1);
    expect(pick({ temperature: 0, presence_penalty: 2 })).toBe(0);
  });

  it('applies logit_bias, which can force a token', () => {
    const sampler = new Sampler(resolve({ seed: 1, logit_bias: { 6: 100 } }));
    expect(new Set(draw(sampler, logits, 50))).toEqual(new Set([6]));
  });

  it('handles a full-size vocabulary with every truncation stage on', () => {
    const big = randomNormal(createRng(freshSeed()), 151936, 4);
    const options = resolve({ seed: 9, temperature: 0.8, top_k: 40, top_p: 0.9, min_p: 0.02 }, big.length);
    const tokens = draw(new Sampler(options), big, 20);
    const top40 = new Set(Array.from(big.keys()).sort((a, b) => big[b] - big[a]).slice(0, 40));
    for (const t of tokens) expect(top40.has(t)).toBe(true);
  });
});
