/**
 * The per-request sampler: runs the processor pipeline on one step's logits and picks the next token,
 * by argmax for greedy decoding or from the softmax with the request's seeded PRNG.
 */
import { createRng, type Rng } from '../util/random';
import { TokenHistory } from './history';
import type { ResolvedSamplingOptions } from './options';
import { LogprobsComputer, type StepLogprobs } from './logprobs';
import { buildProcessors, type LogitsProcessor } from './processors';
import { argmax, maxFinite } from './select';

/** No token has a logit above -Infinity: the model produced NaN/-Infinity everywhere, or a bias masked all. */
export class NoCandidateTokenError extends Error {
  override readonly name = 'NoCandidateTokenError';
  constructor() {
    super('Cannot sample: every logit is -Infinity or NaN');
  }
}

/**
 * Folds a safe integer (negative or above 2^32 included) into mulberry32's 32-bit state; seeds in
 * [0, 2^32) map to themselves.
 */
export function seedToUint32(seed: number): number {
  const high = Math.floor(seed / 2 ** 32);
  return ((seed >>> 0) ^ Math.imul(high, 0x9e3779b1)) >>> 0;
}

/** Greedy choice: the highest logit, the lowest id on ties. */
export function greedyToken(logits: Float32Array): number {
  const id = argmax(logits);
  if (id < 0) throw new NoCandidateTokenError();
  return id;
}

/**
 * Draws from softmax(logits) with a uniform `u` in [0, 1): walks the cumulative mass to u · total.
 * -Infinity and NaN logits have probability 0. `weights` (length ≥ V) is scratch that saves a second
 * round of exp over the vocabulary.
 */
export function sampleToken(logits: Float32Array, u: number, weights = new Float64Array(logits.length)): number {
  const max = maxFinite(logits);
  if (max === -Infinity) throw new NoCandidateTokenError();
  let total = 0;
  for (let i = 0; i < logits.length; i++) {
    const w = logits[i] > -Infinity ? Math.exp(logits[i] - max) : 0;
    weights[i] = w;
    total += w;
  }
  const target = u * total;
  let cum = 0;
  let last = -1;
  for (let i = 0; i < logits.length; i++) {
    if (weights[i] === 0) continue;
    cum += weights[i];
    if (cum > target) return i;
    last = i;
  }
  // Rounding left the sum of the walk a hair below u · total: the last candidate owns that sliver.
  return last;
}

/** One generation request's sampler: options resolved, pipeline built and PRNG seeded once, up front. */
export class Sampler {
  readonly history: TokenHistory;
  private readonly processors: LogitsProcessor[];
  private readonly rng: Rng;
  private weights = new Float64Array(0);
  private readonly logprobs: LogprobsComputer | null;
  /** The last sampled token's log-probabilities, when the options ask for them. */
  lastLogprobs: StepLogprobs | null = null;

  constructor(
    readonly options: ResolvedSamplingOptions,
    prompt: Iterable<number> = [],
  ) {
    this.history = new TokenHistory(prompt);
    this.processors = buildProcessors(options);
    this.rng = createRng(seedToUint32(options.seed));
    this.logprobs = options.logprobs ? new LogprobsComputer(options.topLogprobs) : null;
  }

  /** Picks the next token from one step's logits [V] (rewritten in place) and records it in the history. */
  sample(logits: Float32Array): number {
    for (const p of this.processors) p.process(logits, this.history);
    if (this.weights.length < logits.length) this.weights = new Float64Array(logits.length);
    const id =
      this.options.temperature === 0 ? greedyToken(logits) : sampleToken(logits, this.rng.next(), this.weights);
    this.lastLogprobs = this.logprobs?.compute(logits, id) ?? null;
    this.history.push(id);
    return id;
  }
}
