/**
 * Log-probabilities of one step, from the logits the sampler draws from (after every processor: penalties,
 * temperature, truncation; before sampling), as OpenAI reports them. Tokens a truncation stage dropped have
 * probability 0, so they never appear among the alternatives. Greedy decoding runs only the penalties, so
 * its values are from the penalised logits at temperature 1.
 */
import { selectTop } from './select';

/** OpenAI's cap on top_logprobs. */
export const MAX_TOP_LOGPROBS = 20;

export interface StepLogprobs {
  /** The chosen token's log-probability. */
  logprob: number;
  /** The `top_logprobs` most probable tokens, best first (ties: lower id first). */
  top: { id: number; logprob: number }[];
}

/** log Σ exp(logits) over the values above -Infinity (NaN ignored), in f64; -Infinity when there are none. */
export function logSumExp(logits: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) if (logits[i] > -Infinity) sum += Math.exp(logits[i] - max);
  return max + Math.log(sum);
}

/** Computes one step's log-probabilities; owns its selection scratch, so per-token use allocates only the result. */
export class LogprobsComputer {
  private readonly heap: Int32Array;

  constructor(private readonly topCount: number) {
    this.heap = new Int32Array(topCount);
  }

  compute(logits: Float32Array, chosen: number): StepLogprobs {
    const lse = logSumExp(logits);
    const count = this.topCount > 0 ? selectTop(logits, this.topCount, this.heap) : 0;
    const top = Array.from(this.heap.subarray(0, count), (id) => ({ id, logprob: logits[id] - lse }));
    top.sort((a, b) => b.logprob - a.logprob || a.id - b.id);
    return { logprob: logits[chosen] - lse, top };
  }
}
