import { describe, expect, it } from 'vitest';
import { createRng, freshSeed, randomNormal } from '../../src/util/random';
import { TokenHistory } from '../../src/sampling/history';
import type { ResolvedSamplingOptions } from '../../src/sampling/options';
import {
  buildProcessors,
  frequencyPresenceProcessor,
  logitBiasProcessor,
  minPProcessor,
  repetitionPenaltyProcessor,
  temperatureProcessor,
  topKProcessor,
  topPProcessor,
  type LogitsProcessor,
} from '../../src/sampling/processors';
import { argmax, selectTop, topIndices } from '../../src/sampling/select';
import { expectProbs, kept, logitsOf, softmax } from './helpers';

const none = new TokenHistory();

function run(p: LogitsProcessor, logits: number[] | Float32Array, history = none): Float32Array {
  const out = Float32Array.from(logits);
  p.process(out, history);
  return out;
}

function historyOf(prompt: number[], generated: number[]): TokenHistory {
  const h = new TokenHistory(prompt);
  for (const id of generated) h.push(id);
  return h;
}

const NEUTRAL: ResolvedSamplingOptions = {
  temperature: 1,
  topP: 1,
  topK: 0,
  minP: 0,
  repetitionPenalty: 1,
  frequencyPenalty: 0,
  presencePenalty: 0,
  seed: 0,
  logitBias: new Map(),
  stop: [],
  maxTokens: null,
  numBeams: 1,
  lengthPenalty: 1,
  logprobs: false,
  topLogprobs: 0,
};

describe('logit_bias', () => {
  it('adds each bias to its token only', () => {
    // [1, 2, 3, 0, -1] + {0: +2, 4: -100} = [3, 2, 3, 0, -101]
    const out = run(logitBiasProcessor(new Map([[0, 2], [4, -100]])), [1, 2, 3, 0, -1]);
    expect(Array.from(out)).toEqual([3, 2, 3, 0, -101]);
  });

  it('moves the distribution as hand-computed', () => {
    // Uniform over 4, then +ln 3 on id 2: weights [1, 1, 3, 1] / 6.
    expectProbs(run(logitBiasProcessor(new Map([[2, Math.log(3)]])), [0, 0, 0, 0]), [1 / 6, 1 / 6, 3 / 6, 1 / 6]);
  });
});

describe('repetition_penalty (HF)', () => {
  it('divides positive and multiplies negative logits of every id in prompt + generated', () => {
    // prompt [0, 3], generated [1], penalty 2:
    // id0 2 > 0 → 2/2 = 1; id1 -1 → -1·2 = -2; id3 -3 → -6; id2, id4 untouched.
    const out = run(repetitionPenaltyProcessor(2), [2, -1, 4, -3, 0.5], historyOf([0, 3], [1]));
    expect(Array.from(out)).toEqual([1, -2, 4, -6, 0.5]);
  });

  it('counts each id once however often it repeats, and leaves 0 at 0', () => {
    // id0 appears 3 times but is penalized once: 8 / 2 = 4; id1's logit 0 stays 0.
    const out = run(repetitionPenaltyProcessor(2), [8, 0, 1], historyOf([0, 0, 1], [0]));
    expect(Array.from(out)).toEqual([4, 0, 1]);
  });

  it('with penalty < 1 makes repeated tokens more likely, in both signs', () => {
    // penalty 0.5: 2 / 0.5 = 4; -1 · 0.5 = -0.5.
    const out = run(repetitionPenaltyProcessor(0.5), [2, -1, 1], historyOf([0, 1], []));
    expect(Array.from(out)).toEqual([4, -0.5, 1]);
  });

  it('gives the hand-computed distribution', () => {
    // logits [ln 4, ln 4, 0], id0 in context, penalty 2: ln 4 / 2 = ln 2 → weights [2, 4, 1] / 7.
    const out = run(repetitionPenaltyProcessor(2), [Math.log(4), Math.log(4), 0], historyOf([0], []));
    expectProbs(out, [2 / 7, 4 / 7, 1 / 7]);
  });
});

describe('frequency and presence penalties (OpenAI)', () => {
  it('subtract count·frequency + presence for generated tokens only', () => {
    // prompt [0, 0, 2] does not count; generated counts: id1 × 3, id3 × 1. frequency 0.5, presence 1:
    // id1: 1 - (3·0.5 + 1) = -1.5; id3: 1 - (1·0.5 + 1) = -0.5; ids 0, 2, 4 stay 1.
    const out = run(frequencyPresenceProcessor(0.5, 1), [1, 1, 1, 1, 1], historyOf([0, 0, 2], [1, 3, 1, 1]));
    expect(Array.from(out)).toEqual([1, -1.5, 1, -0.5, 1]);
  });

  it('negative values encourage repetition', () => {
    // id0 generated twice: 0 - (2·-1 + -0.5) = 2.5.
    const out = run(frequencyPresenceProcessor(-1, -0.5), [0, 0], historyOf([], [0, 0]));
    expect(Array.from(out)).toEqual([2.5, 0]);
  });

  it('frequency alone scales with the count, presence alone does not', () => {
    const h = historyOf([], [0, 0, 0, 1]);
    expect(Array.from(run(frequencyPresenceProcessor(1, 0), [0, 0, 0], h))).toEqual([-3, -1, 0]);
    expect(Array.from(run(frequencyPresenceProcessor(0, 1), [0, 0, 0], h))).toEqual([-1, -1, 0]);
  });
});

describe('temperature', () => {
  it('divides the logits: T = 2 takes square roots of the weights', () => {
    // logits ln[1, 2, 4] / 2 → weights [1, √2, 2], sum 3 + √2.
    const out = run(temperatureProcessor(2), logitsOf([1 / 7, 2 / 7, 4 / 7]));
    const z = 3 + Math.SQRT2;
    expectProbs(out, [1 / z, Math.SQRT2 / z, 2 / z]);
  });

  it('T = 0.5 squares the weights', () => {
    // weights [1, 2, 4]² = [1, 4, 16] / 21.
    expectProbs(run(temperatureProcessor(0.5), logitsOf([1 / 7, 2 / 7, 4 / 7])), [1 / 21, 4 / 21, 16 / 21]);
  });
});

describe('top_k', () => {
  it('keeps the k most probable tokens and renormalizes', () => {
    // probs [0.1, 0.4, 0.2, 0.3], k 2 → ids 1 and 3: [0, 0.4, 0, 0.3] / 0.7.
    const out = run(topKProcessor(2), logitsOf([0.1, 0.4, 0.2, 0.3]));
    expectProbs(out, [0, 4 / 7, 0, 3 / 7]);
  });

  it('keeps every token tied with the k-th value (HF threshold semantics)', () => {
    // k 2: the 2nd-highest value is 2, shared by ids 2 and 3, so three tokens survive.
    expect(kept(run(topKProcessor(2), [3, 1, 2, 2, 0]))).toEqual([0, 2, 3]);
  });

  it('is a no-op for k = 0, k = V and k > V', () => {
    const logits = [0.5, -1, 2, 0];
    for (const k of [0, 4, 5, 1000]) expect(Array.from(run(topKProcessor(k), logits))).toEqual(logits);
  });

  it('k = 1 keeps only the argmax', () => {
    expect(kept(run(topKProcessor(1), [0.1, 0.9, 0.3]))).toEqual([1]);
  });

  it('keeps all finite tokens when fewer than k are finite', () => {
    const out = run(topKProcessor(3), [-Infinity, 1.5, -Infinity, -Infinity, -Infinity]);
    expect(kept(out)).toEqual([1]);
    expectProbs(out, [0, 1, 0, 0, 0]);
  });

  it('matches a full sort on a 151936-token vocabulary', () => {
    const seed = freshSeed();
    const rng = createRng(seed);
    const logits = randomNormal(rng, 151936, 3);
    for (const k of [1, 5, 50, 1000]) {
      const out = run(topKProcessor(k), logits);
      const threshold = [...logits].sort((a, b) => b - a)[k - 1];
      const expected = kept(logits.map((l) => (l >= threshold ? l : -Infinity)));
      expect(kept(out), `seed ${seed} k ${k}`).toEqual(expected);
    }
  });
});

describe('top_p', () => {
  // probs [0.05, 0.5, 0.15, 0.3]; by probability: id1 0.5, id3 0.3, id2 0.15, id0 0.05.
  const probs = [0.05, 0.5, 0.15, 0.3];

  it('keeps the smallest prefix reaching top_p', () => {
    // 0.5 < 0.7, 0.5 + 0.3 = 0.8 ≥ 0.7 → {1, 3}, renormalized over 0.8.
    expectProbs(run(topPProcessor(0.7), logitsOf(probs)), [0, 0.5 / 0.8, 0, 0.3 / 0.8]);
    // 0.8 < 0.81 → also id2: over 0.95.
    expectProbs(run(topPProcessor(0.81), logitsOf(probs)), [0, 0.5 / 0.95, 0.15 / 0.95, 0.3 / 0.95]);
  });

  it('a cumulative sum landing exactly on top_p stops there', () => {
    // 0.5 + 0.3 = 0.8 = top_p: two tokens, not three.
    expect(kept(run(topPProcessor(0.8), logitsOf(probs)))).toEqual([1, 3]);
  });

  it('always keeps at least the most probable token', () => {
    expect(kept(run(topPProcessor(0.4), logitsOf(probs)))).toEqual([1]);
    expect(kept(run(topPProcessor(1e-9), logitsOf(probs)))).toEqual([1]);
  });

  it('top_p = 1 is a no-op', () => {
    const logits = logitsOf(probs);
    expect(Array.from(run(topPProcessor(1), logits))).toEqual(Array.from(logits));
  });

  it('breaks ties at the boundary toward the lower id', () => {
    // [0.4, 0.3, 0.3], top_p 0.6: 0.4, then one of the 0.3s reaches 0.7 — id 1, not id 2.
    expect(kept(run(topPProcessor(0.6), logitsOf([0.4, 0.3, 0.3])))).toEqual([0, 1]);
    // Uniform over 10, top_p 0.5: exactly the five lowest ids (0.1 · 5 = 0.5).
    expect(kept(run(topPProcessor(0.5), new Float32Array(10)))).toEqual([0, 1, 2, 3, 4]);
  });

  it('ignores -Infinity tokens, and leaves a lone finite token alone', () => {
    expect(kept(run(topPProcessor(0.9), [-Infinity, -Infinity, 0.3, -Infinity]))).toEqual([2]);
    // Masked ids do not count: over the finite [0.5, 0.3, 0.2] (ids 1, 3, 4), 0.75 needs two.
    expect(kept(run(topPProcessor(0.75), logitsOf([0, 0.5, 0, 0.3, 0.2])))).toEqual([1, 3]);
  });

  it('matches a full sort on a 151936-token vocabulary, peaked and flat', () => {
    const seed = freshSeed();
    const rng = createRng(seed);
    for (const scale of [0.01, 1, 4, 12]) {
      const logits = randomNormal(rng, 151936, scale);
      for (const p of [0.1, 0.5, 0.9, 0.99]) {
        const out = run(topPProcessor(p), logits);
        const q = softmax(logits);
        const order = Array.from(logits.keys()).sort((a, b) => q[b] - q[a] || a - b);
        const expected: number[] = [];
        let cum = 0;
        for (const id of order) {
          if (cum >= p) break;
          expected.push(id);
          cum += q[id];
        }
        const got = kept(out);
        // The slack that makes an exact boundary count as reached may end the nucleus one token early.
        expect(got.length - expected.length, `seed ${seed} scale ${scale} p ${p}`).toBeGreaterThanOrEqual(-1);
        expect(got.length - expected.length, `seed ${seed} scale ${scale} p ${p}`).toBeLessThanOrEqual(0);
        expect(got).toEqual(order.slice(0, got.length).sort((a, b) => a - b));
      }
    }
  });
});

describe('min_p', () => {
  it('drops tokens below min_p · max probability', () => {
    // probs [0.5, 0.3, 0.15, 0.05], min_p 0.2 → cutoff 0.1: id3 goes; the rest over 0.95.
    expectProbs(run(minPProcessor(0.2), logitsOf([0.5, 0.3, 0.15, 0.05])), [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0]);
  });

  it('min_p = 1 keeps exactly the tokens tied for the max', () => {
    expectProbs(run(minPProcessor(1), [2, 2, 1]), [0.5, 0.5, 0]);
  });

  it('min_p = 0 is a no-op, and -Infinity elsewhere does not matter', () => {
    expect(Array.from(run(minPProcessor(0), [1, -5, 3]))).toEqual([1, -5, 3]);
    expect(kept(run(minPProcessor(0.5), [-Infinity, 0, -Infinity]))).toEqual([1]);
  });
});

describe('buildProcessors', () => {
  it('leaves out disabled stages', () => {
    expect(buildProcessors(NEUTRAL)).toHaveLength(0);
    expect(buildProcessors({ ...NEUTRAL, temperature: 0.7, topK: 40, topP: 0.9, minP: 0.05 })).toHaveLength(4);
  });

  it('applies logit_bias before repetition_penalty, and that before frequency_penalty', () => {
    // id0: 1 + bias 1 = 2 → / penalty 2 = 1 (penalizing first would give 1/2 + 1 = 1.5).
    // id1: -1 → · 2 = -2 → - frequency 1 · count 1 = -3 (the other way: (-1 - 1) · 2 = -4).
    const options = { ...NEUTRAL, logitBias: new Map([[0, 1]]), repetitionPenalty: 2, frequencyPenalty: 1 };
    const logits = Float32Array.from([1, -1, 0]);
    for (const p of buildProcessors(options)) p.process(logits, historyOf([0], [1]));
    expect(Array.from(logits)).toEqual([1, -3, 0]);
  });

  it('applies temperature before top_p', () => {
    // probs [0.6, 0.3, 0.1], top_p 0.6: at T = 1 only id0 (0.6 ≥ 0.6). At T = 2 the weights are
    // √[0.6, 0.3, 0.1] = [0.775, 0.548, 0.316] / 1.639 = [0.473, 0.334, 0.193], so two tokens are needed.
    const logits = logitsOf([0.6, 0.3, 0.1]);
    for (const p of buildProcessors({ ...NEUTRAL, temperature: 2, topP: 0.6 })) p.process(logits, none);
    const w = [0.6, 0.3].map(Math.sqrt);
    expectProbs(logits, [w[0] / (w[0] + w[1]), w[1] / (w[0] + w[1]), 0]);
  });

  it('applies top_k before top_p before min_p', () => {
    // probs [0.35, 0.25, 0.2, 0.15, 0.05]. top_k 3 → [0.35, 0.25, 0.2] / 0.8 = [0.4375, 0.3125, 0.25];
    // top_p 0.7: 0.4375 + 0.3125 = 0.75 ≥ 0.7 → ids 0, 1 → [0.5833, 0.4167]; min_p 0.75: cutoff
    // 0.75 · 0.5833 = 0.4375 > 0.4167 → only id0. (top_p on the untruncated distribution would need 3.)
    const logits = logitsOf([0.35, 0.25, 0.2, 0.15, 0.05]);
    const stages = buildProcessors({ ...NEUTRAL, topK: 3, topP: 0.7, minP: 0.75 });
    stages[0].process(logits, none);
    stages[1].process(logits, none);
    expectProbs(logits, [0.35 / 0.6, 0.25 / 0.6, 0, 0, 0]);
    stages[2].process(logits, none);
    expect(kept(logits)).toEqual([0]);
  });

  it('stops after the penalties for greedy decoding', () => {
    expect(buildProcessors({ ...NEUTRAL, temperature: 0, topK: 1, topP: 0.5, minP: 0.5 })).toHaveLength(0);
    expect(buildProcessors({ ...NEUTRAL, temperature: 0, repetitionPenalty: 1.2 })).toHaveLength(1);
  });
});

describe('selection helpers', () => {
  it('argmax takes the lowest id on ties and skips -Infinity/NaN', () => {
    expect(argmax([1, 3, 3, 2])).toBe(1);
    expect(argmax([NaN, -Infinity, -5])).toBe(2);
    expect(argmax([-Infinity, -Infinity])).toBe(-1);
  });

  it('topIndices orders best first with ties to the lower index', () => {
    expect(topIndices([1, 5, 3, 5, -Infinity, 4], 4)).toEqual([1, 3, 5, 2]);
    expect(topIndices([1, 2], 10)).toEqual([1, 0]);
  });

  it('selectTop agrees with a sort on random inputs with many ties', () => {
    const seed = freshSeed();
    const rng = createRng(seed);
    const heap = new Int32Array(64);
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + rng.int(300);
      const values = Array.from({ length: n }, () => (rng.next() < 0.1 ? -Infinity : rng.int(20)));
      const k = 1 + rng.int(64);
      const count = selectTop(values, k, heap);
      const expected = values
        .map((v, i) => ({ v, i }))
        .filter((x) => x.v > -Infinity)
        .sort((a, b) => b.v - a.v || a.i - b.i)
        .slice(0, k)
        .map((x) => x.i);
      expect(Array.from(heap.subarray(0, count)).sort((a, b) => a - b), `seed ${seed}`).toEqual(
        expected.sort((a, b) => a - b),
      );
    }
  });
});
