import { describe, expect, it } from 'vitest';
import { createRng, freshSeed } from '../../src/util/random';
import { beamSearch, type BeamSearchOptions, type BeamSearchResult } from '../../src/sampling/beam';
import { InvalidOptionError } from '../../src/sampling/options';

type Model = (sequence: readonly number[]) => Float32Array;

/** A synthetic "model": logits that are a fixed pseudo-random function of (model seed, sequence). */
function randomModel(seed: number, vocab: number, scale = 2): Model {
  return (sequence) => {
    let h = seed >>> 0;
    for (const t of sequence) h = Math.imul(h ^ (t + 1), 0x01000193) >>> 0;
    const rng = createRng(h ^ (sequence.length * 0x9e3779b9));
    return Float32Array.from({ length: vocab }, () => rng.normal() * scale);
  };
}

/** A model given as next-token probabilities per sequence (joined by ','). */
function tableModel(table: Record<string, number[]>): Model {
  return (sequence) => Float32Array.from(table[sequence.join(',')], (p) => Math.log(p));
}

function logSoftmax(logits: Float32Array): number[] {
  const max = Math.max(...logits);
  const lse = max + Math.log(logits.reduce((s, l) => s + Math.exp(l - max), 0));
  return Array.from(logits, (l) => l - lse);
}

/** Counts the model's calls, as the engine's step would rerun it per beam. */
function stepper(model: Model) {
  const calls: number[][][] = [];
  const step = async (beams: number[][]) => {
    calls.push(beams);
    return beams.map(model);
  };
  return { step, calls };
}

/**
 * Exhaustive search: every sequence that ends with an EOS within maxNew tokens (no EOS before), or runs
 * maxNew tokens without one, scored logprob / length^lengthPenalty.
 */
function bruteForce(
  model: Model,
  vocab: number,
  eos: number[],
  maxNew: number,
  lengthPenalty: number,
): BeamSearchResult {
  let best: BeamSearchResult | null = null;
  const consider = (r: BeamSearchResult) => {
    if (best === null || r.score > best.score) best = r;
  };
  const walk = (prefix: number[], logprob: number) => {
    const lp = logSoftmax(model(prefix));
    for (let t = 0; t < vocab; t++) {
      const total = logprob + lp[t];
      const length = prefix.length + 1;
      const score = total / length ** lengthPenalty;
      if (eos.includes(t)) consider({ tokens: [...prefix], logprob: total, score, finishReason: 'stop' });
      else if (length === maxNew) consider({ tokens: [...prefix, t], logprob: total, score, finishReason: 'length' });
      else walk([...prefix, t], total);
    }
  };
  walk([], 0);
  if (best === null) throw new Error('no sequence');
  return best;
}

/**
 * Reference beam search, written for clarity: every (beam, token) candidate ranked, the first 2·numBeams
 * taken, EOS within the first numBeams finishing, no early stopping, every finished hypothesis kept.
 */
function plainBeamSearch(model: Model, numBeams: number, maxNew: number, eos: number[], lengthPenalty: number) {
  const finished: { tokens: number[]; score: number }[] = [];
  type Running = { tokens: number[]; logprob: number };
  let beams: Running[] = [{ tokens: [], logprob: 0 }];
  for (let length = 1; length <= maxNew && beams.length > 0; length++) {
    const all = beams.flatMap((b, beam) =>
      logSoftmax(model(b.tokens)).map((lp, token) => ({ beam, token, logprob: b.logprob + lp })),
    );
    all.sort((x, y) => y.logprob - x.logprob || x.beam - y.beam || x.token - y.token);
    const next: Running[] = [];
    all.slice(0, 2 * numBeams).forEach((c, rank) => {
      if (next.length === numBeams) return;
      const tokens = beams[c.beam].tokens;
      if (!eos.includes(c.token)) next.push({ tokens: [...tokens, c.token], logprob: c.logprob });
      else if (rank < numBeams) finished.push({ tokens, score: c.logprob / length ** lengthPenalty });
    });
    beams = next;
  }
  for (const b of beams) finished.push({ tokens: b.tokens, score: b.logprob / maxNew ** lengthPenalty });
  // Stable sort: among equal scores the earlier hypothesis wins, as in beamSearch.
  return finished.sort((a, b) => b.score - a.score)[0];
}

describe('beamSearch', () => {
  it('finds the global optimum when the beam never prunes (vs brute force)', async () => {
    const seed = freshSeed();
    for (let trial = 0; trial < 12; trial++) {
      const vocab = 3 + (trial % 2);
      const eos = trial % 3 === 0 ? [vocab - 1, vocab - 2] : [vocab - 1];
      const lengthPenalty = [1, 0, 2, -1][trial % 4];
      const maxNew = 4;
      const model = randomModel(seed + trial, vocab);
      // Enough beams to hold every sequence: nothing is ever cut, so only early stopping could lose the best.
      const numBeams = vocab ** maxNew;
      const { step } = stepper(model);
      const got = await beamSearch({ numBeams, maxNewTokens: maxNew, eosTokenIds: eos, lengthPenalty, step });
      const want = bruteForce(model, vocab, eos, maxNew, lengthPenalty);
      const label = `seed ${seed + trial} lp ${lengthPenalty}`;
      expect(got.tokens, label).toEqual(want.tokens);
      expect(got.finishReason, label).toBe(want.finishReason);
      expect(got.score, label).toBeCloseTo(want.score, 9);
      expect(got.logprob, label).toBeCloseTo(want.logprob, 9);
    }
  });

  it('with few beams never beats the optimum, and reports its own sequence’s true score', async () => {
    const seed = freshSeed();
    for (let trial = 0; trial < 20; trial++) {
      const vocab = 5;
      const model = randomModel(seed + trial, vocab);
      const { step } = stepper(model);
      const got = await beamSearch({ numBeams: 2, maxNewTokens: 4, eosTokenIds: [0], step });
      const want = bruteForce(model, vocab, [0], 4, 1);
      expect(got.score).toBeLessThanOrEqual(want.score + 1e-12);
      // Rescore the returned sequence from scratch.
      const path = got.finishReason === 'stop' ? [...got.tokens, 0] : got.tokens;
      let logprob = 0;
      path.forEach((t, i) => (logprob += logSoftmax(model(path.slice(0, i)))[t]));
      expect(got.logprob, `seed ${seed + trial}`).toBeCloseTo(logprob, 9);
      expect(got.score).toBeCloseTo(logprob / path.length, 9);
    }
  });

  it('two beams escape the greedy trap that one beam falls into', async () => {
    // Tokens: 0 = A, 1 = B, 2 = EOS. A is likelier first, but after it everything is a coin toss,
    // while B is almost surely followed by EOS.
    const model = tableModel({
      '': [0.6, 0.35, 0.05],
      '0': [0.34, 0.33, 0.33],
      '1': [0.005, 0.005, 0.99],
      '0,0': [0.1, 0.1, 0.8],
      '0,1': [0.1, 0.1, 0.8],
      '1,0': [0.1, 0.1, 0.8],
      '1,1': [0.1, 0.1, 0.8],
    });
    const run = (numBeams: number) =>
      beamSearch({ numBeams, maxNewTokens: 2, eosTokenIds: [2], step: stepper(model).step });
    // One beam: step 1 keeps A (0.6); step 2 keeps A again (0.34; B and EOS tie at 0.33 below it) and
    // runs into the length limit: (ln 0.6 + ln 0.34) / 2 = (-0.511 - 1.079) / 2 = -0.795.
    const greedy = await run(1);
    expect(greedy).toMatchObject({ tokens: [0, 0], finishReason: 'length' });
    expect(greedy.score).toBeCloseTo((Math.log(0.6) + Math.log(0.34)) / 2, 6);
    // Two beams keep B: [B, EOS] scores (ln 0.35 + ln 0.99) / 2 = (-1.050 - 0.010) / 2 = -0.530.
    const beam = await run(2);
    expect(beam).toMatchObject({ tokens: [1], finishReason: 'stop' });
    expect(beam.score).toBeCloseTo((Math.log(0.35) + Math.log(0.99)) / 2, 6);
  });

  it('length_penalty trades length for probability', async () => {
    // EOS first: ln 0.4 over length 1. Or A then EOS: ln 0.6 + ln 0.9 over length 2.
    const model = tableModel({ '': [0.6, 0.4], '0': [0.1, 0.9] });
    const run = (lengthPenalty: number) =>
      beamSearch({ numBeams: 2, maxNewTokens: 2, eosTokenIds: [1], lengthPenalty, step: stepper(model).step });
    // lp 0: raw sums, -0.916 (EOS) vs -0.616 (A, EOS) → [A].
    expect((await run(0)).tokens).toEqual([0]);
    // lp -2 multiplies by length²: -0.916 vs -0.616 · 4 = -2.46 → the empty sequence.
    expect((await run(-2)).tokens).toEqual([]);
  });

  it('stops early once numBeams are finished and the best running beam is worse than all of them', async () => {
    // EOS (id 2) has probability 0.999 after any sequence. Step 1 finishes [] (score ln 0.999 = -0.001) and
    // runs [A], [B]; step 2 finishes [A] (score (ln 0.0005 + ln 0.999) / 2 = -3.80), and the best running
    // beam [A, A] scores 2 ln 0.0005 / 2 = -7.6 < -3.80: done after 2 of 50 steps.
    const model: Model = () => Float32Array.from([0.0005, 0.0005, 0.999], Math.log);
    const { step, calls } = stepper(model);
    const got = await beamSearch({ numBeams: 2, maxNewTokens: 50, eosTokenIds: [2], step });
    expect(got).toMatchObject({ tokens: [], finishReason: 'stop' });
    expect(got.score).toBeCloseTo(Math.log(0.999), 9);
    expect(calls).toHaveLength(2);
  });

  it('matches a plain HF-style beam search run to maxNewTokens when lengthPenalty ≤ 0', async () => {
    const seed = freshSeed();
    for (let trial = 0; trial < 30; trial++) {
      const model = randomModel(seed + trial, 5, 1);
      const numBeams = 2 + (trial % 3);
      const lengthPenalty = [0, -0.5, -1][trial % 3];
      const { step } = stepper(model);
      const got = await beamSearch({ numBeams, maxNewTokens: 6, eosTokenIds: [0, 1], lengthPenalty, step });
      const want = plainBeamSearch(model, numBeams, 6, [0, 1], lengthPenalty);
      expect(got.tokens, `seed ${seed + trial}`).toEqual(want.tokens);
      expect(got.score).toBeCloseTo(want.score, 9);
    }
  });

  it('passes the running beams, without the prompt, as fresh arrays', async () => {
    const model = tableModel({ '': [0.5, 0.3, 0.2], '0': [0.1, 0.1, 0.8], '1': [0.1, 0.1, 0.8] });
    const { step, calls } = stepper(model);
    await beamSearch({ numBeams: 2, maxNewTokens: 2, eosTokenIds: [2], step });
    expect(calls).toEqual([[[]], [[0], [1]]]);
    calls[1][0].push(99);
    expect(calls[1][1]).toEqual([1]);
  });

  it('validates its arguments and the step’s answer', async () => {
    const step = async (beams: number[][]) => beams.map(() => new Float32Array(3));
    const search = (options: Partial<BeamSearchOptions>) =>
      beamSearch({ numBeams: 1, maxNewTokens: 2, eosTokenIds: [], step, ...options });
    await expect(search({ numBeams: 0 })).rejects.toThrow(InvalidOptionError);
    await expect(search({ maxNewTokens: 1.5 })).rejects.toThrow(InvalidOptionError);
    await expect(search({ lengthPenalty: NaN })).rejects.toThrow(InvalidOptionError);
    const wrong = async () => [new Float32Array(3), new Float32Array(3)];
    await expect(search({ step: wrong })).rejects.toThrow(/2 logit vectors/);
    const dead = async (beams: number[][]) => beams.map(() => Float32Array.from([-Infinity, -Infinity]));
    await expect(search({ step: dead })).rejects.toThrow(/finite/);
  });
});
