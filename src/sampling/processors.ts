/**
 * Logit processors: each rewrites a logits vector [V] in place, and they compose in HF's order (see
 * buildProcessors). Truncation stages (top-k, top-p, min-p) drop a token by setting its logit to -Infinity,
 * which every later stage and the final softmax treat as "not a candidate" (as they do NaN).
 *
 * Each factory returns an object that owns its scratch buffers, so a sampler that builds its pipeline once
 * per request allocates nothing per token.
 */
import type { TokenHistory } from './history';
import type { ResolvedSamplingOptions } from './options';
import { maxFinite, selectTop } from './select';

export interface LogitsProcessor {
  /** Rewrites `logits` [V] in place; `history` holds the prompt and the tokens generated so far. */
  process(logits: Float32Array, history: TokenHistory): void;
}

/** Adds bias[id] to logits[id]; ids outside the vocabulary are ignored (validation rejects them earlier). */
export function logitBiasProcessor(bias: ReadonlyMap<number, number>): LogitsProcessor {
  return {
    process(logits) {
      bias.forEach((b, id) => {
        if (id < logits.length) logits[id] += b;
      });
    },
  };
}

/**
 * HF's repetition penalty (CTRL): every id present in prompt + generated tokens is made less likely,
 * whatever the sign of its logit: positive logits are divided by `penalty`, negative ones multiplied.
 */
export function repetitionPenaltyProcessor(penalty: number): LogitsProcessor {
  return {
    process(logits, history) {
      for (const id of history.contextIds) {
        if (id >= logits.length) continue;
        const l = logits[id];
        logits[id] = l > 0 ? l / penalty : l * penalty;
      }
    },
  };
}

/**
 * OpenAI's penalties, over generated tokens only (not the prompt):
 * logit -= count · frequency + (count > 0) · presence.
 */
export function frequencyPresenceProcessor(frequency: number, presence: number): LogitsProcessor {
  return {
    process(logits, history) {
      history.generatedCounts.forEach((count, id) => {
        if (id < logits.length) logits[id] -= count * frequency + presence;
      });
    },
  };
}

/** Divides by `temperature` (> 0; temperature 0 is greedy and never reaches this stage). */
export function temperatureProcessor(temperature: number): LogitsProcessor {
  return {
    process(logits) {
      for (let i = 0; i < logits.length; i++) logits[i] /= temperature;
    },
  };
}

/**
 * Keeps the k highest logits. As in HF, tokens tied with the k-th value are all kept (the cut is a
 * threshold), so the result is independent of token order and may exceed k. k ≥ V or k = 0: no-op.
 */
export function topKProcessor(k: number): LogitsProcessor {
  let heap = new Int32Array(0);
  return {
    process(logits) {
      if (k <= 0 || k >= logits.length) return;
      if (heap.length < k) heap = new Int32Array(k);
      if (selectTop(logits, k, heap) < k) return;
      const threshold = logits[heap[0]];
      for (let i = 0; i < logits.length; i++) if (logits[i] < threshold) logits[i] = -Infinity;
    },
  };
}

/** Histogram of the distance below the max logit: BINS bins of 1/BINS_PER_NAT nats, the last open-ended. */
const BINS = 128;
const BINS_PER_NAT = 8;
/**
 * A cumulative probability within this relative distance of top_p counts as reaching it, so that a
 * nucleus sitting exactly on the boundary (0.5 + 0.3 with top_p 0.8) does not depend on float rounding.
 */
const TOP_P_SLACK = 1e-6;

const binOf = (belowMax: number): number => Math.min(BINS - 1, Math.floor(belowMax * BINS_PER_NAT));

/**
 * Nucleus sampling: keeps the smallest set of most probable tokens whose probability sums to ≥ p (at least
 * one token; ties in probability go to the lower id). p ≥ 1: no-op.
 *
 * Without sorting V: one pass bins every candidate by how far its logit is below the max and sums each
 * bin's probability mass; the bins in order form prefixes of the sorted order, so the first bins whose mass
 * reaches p hold the whole nucleus, and only the tokens in them are gathered and sorted. For a peaked
 * distribution that is a few tokens; only a nearly flat one (whose nucleus really is large) sorts many.
 */
export function topPProcessor(p: number): LogitsProcessor {
  const mass = new Float64Array(BINS);
  let candidates = new Int32Array(0);
  return {
    process(logits) {
      if (p >= 1) return;
      const max = maxFinite(logits);
      if (max === -Infinity) return;
      mass.fill(0);
      for (let i = 0; i < logits.length; i++) {
        const l = logits[i];
        if (l > -Infinity) mass[binOf(max - l)] += Math.exp(l - max);
      }
      let total = 0;
      for (let b = 0; b < BINS; b++) total += mass[b];
      const target = p * total * (1 - TOP_P_SLACK);

      let lastBin = BINS - 1;
      for (let b = 0, cum = 0; b < BINS; b++) {
        cum += mass[b];
        if (cum >= target) {
          lastBin = b;
          break;
        }
      }
      if (candidates.length < logits.length) candidates = new Int32Array(logits.length);
      let count = 0;
      for (let i = 0; i < logits.length; i++) {
        const l = logits[i];
        if (l > -Infinity && binOf(max - l) <= lastBin) candidates[count++] = i;
        else logits[i] = -Infinity;
      }
      const sorted = candidates.subarray(0, count).sort((a, b) => logits[b] - logits[a] || a - b);
      let cum = 0;
      let keep = 0;
      while (keep < count && cum < target) cum += Math.exp(logits[sorted[keep++]] - max);
      for (let j = keep; j < count; j++) logits[sorted[j]] = -Infinity;
    },
  };
}

/**
 * min-p: drops tokens whose probability is below p · (max probability). The ratio of two probabilities is
 * exp of the logit difference, so no softmax is needed: drop when logit < max + ln p. p = 0: no-op.
 */
export function minPProcessor(p: number): LogitsProcessor {
  return {
    process(logits) {
      if (p <= 0) return;
      const cutoff = maxFinite(logits) + Math.log(p);
      for (let i = 0; i < logits.length; i++) if (logits[i] < cutoff) logits[i] = -Infinity;
    },
  };
}

/**
 * The pipeline for `options` in HF's order, leaving out stages their options disable:
 * logit_bias → repetition_penalty → frequency/presence penalty → temperature → top_k → top_p → min_p.
 * For greedy decoding (temperature 0) it stops after the penalties: the truncation stages always keep the
 * argmax, so they cannot change a greedy choice.
 */
export function buildProcessors(options: ResolvedSamplingOptions): LogitsProcessor[] {
  const list: LogitsProcessor[] = [];
  if (options.logitBias.size > 0) list.push(logitBiasProcessor(options.logitBias));
  if (options.repetitionPenalty !== 1) list.push(repetitionPenaltyProcessor(options.repetitionPenalty));
  if (options.frequencyPenalty !== 0 || options.presencePenalty !== 0) {
    list.push(frequencyPresenceProcessor(options.frequencyPenalty, options.presencePenalty));
  }
  if (options.temperature === 0) return list;
  if (options.temperature !== 1) list.push(temperatureProcessor(options.temperature));
  if (options.topK > 0) list.push(topKProcessor(options.topK));
  if (options.topP < 1) list.push(topPProcessor(options.topP));
  if (options.minP > 0) list.push(minPProcessor(options.minP));
  return list;
}
