/**
 * Beam search for non-streaming generation, model-agnostic: `step` maps the running beams (generated
 * tokens only; the engine prepends the prompt and may apply logit processors) to next-token logits.
 *
 * Follows HF's BeamSearchScorer: each step scores every beam's tokens by log-softmax plus the beam's sum,
 * takes the 2·numBeams best candidates, turns an EOS candidate ranked within the first numBeams into a
 * finished hypothesis scored sum / length^lengthPenalty (length = generated tokens, the EOS included),
 * and continues the best numBeams non-EOS candidates. At maxNewTokens the running beams become hypotheses
 * too. The numBeams best finished hypotheses are kept; the best one is returned.
 *
 * Differences from HF, all deliberate:
 * - Search starts from one beam, not numBeams copies of it with -1e9 scores; when fewer than numBeams
 *   non-EOS candidates exist (tiny vocabularies) fewer beams run, rather than padding with junk.
 * - Early stopping is HF's default (early_stopping=False), which is the simplification: stop once numBeams
 *   hypotheses are finished and the best running beam, scored at its current length, does not beat the
 *   worst of them. That assumes a running beam's score never improves. It is exact for lengthPenalty ≤ 0
 *   (sums of log-probabilities only fall, and longer sequences are penalized at least as much), so the
 *   result is then that of searching to maxNewTokens. For lengthPenalty > 0 a beam whose average
 *   log-probability would still rise can be cut; an exact bound (its sum / maxNewTokens^lengthPenalty)
 *   would almost never stop early, and every step costs numBeams forward passes.
 */
import type { FinishReason } from './finish';
import { InvalidOptionError } from './options';
import { maxFinite, topIndices } from './select';

export interface BeamSearchOptions {
  /** Integer ≥ 1. */
  numBeams: number;
  /** Integer ≥ 1. */
  maxNewTokens: number;
  eosTokenIds: readonly number[];
  /** Scores are sum logprob / length^lengthPenalty; > 0 favours longer sequences. Default 1. */
  lengthPenalty?: number;
  /**
   * Logits [V] for each beam, in order: distinct arrays, read but not modified. Each beam is passed as a
   * fresh array the callee may keep.
   */
  step: (beams: number[][]) => Promise<Float32Array[]>;
}

export interface BeamSearchResult {
  /** Generated tokens, without the EOS that ended them. */
  tokens: number[];
  /** Sum of the tokens' log-probabilities (the EOS included). */
  logprob: number;
  /** logprob / length^lengthPenalty, the quantity maximised. */
  score: number;
  finishReason: FinishReason;
}

interface Beam {
  tokens: number[];
  logprob: number;
}

interface Candidate {
  beam: number;
  token: number;
  logprob: number;
}

function logSumExp(logits: Float32Array): number {
  const max = maxFinite(logits);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) if (logits[i] > -Infinity) sum += Math.exp(logits[i] - max);
  return max + Math.log(sum);
}

function positiveInt(option: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) throw new InvalidOptionError(option, 'an integer ≥ 1', value);
}

/** The best sequence under beam search; see the file comment for the exact semantics. */
export async function beamSearch(options: BeamSearchOptions): Promise<BeamSearchResult> {
  const { numBeams, maxNewTokens, step } = options;
  const lengthPenalty = options.lengthPenalty ?? 1;
  positiveInt('numBeams', numBeams);
  positiveInt('maxNewTokens', maxNewTokens);
  if (!Number.isFinite(lengthPenalty)) throw new InvalidOptionError('lengthPenalty', 'a finite number', lengthPenalty);
  const eos = new Set(options.eosTokenIds);
  const score = (logprob: number, length: number): number => logprob / length ** lengthPenalty;

  /** Best first, at most numBeams; a newcomer must beat a hypothesis strictly to displace it. */
  const finished: BeamSearchResult[] = [];
  const addFinished = (hypothesis: BeamSearchResult): void => {
    let at = finished.length;
    while (at > 0 && finished[at - 1].score < hypothesis.score) at--;
    if (at < numBeams) finished.splice(at, 0, hypothesis);
    if (finished.length > numBeams) finished.pop();
  };
  const done = (beams: Beam[], length: number): boolean =>
    finished.length === numBeams &&
    (beams.length === 0 || score(beams[0].logprob, length) <= finished[numBeams - 1].score);

  let beams: Beam[] = [{ tokens: [], logprob: 0 }];
  for (let length = 1; beams.length > 0; length++) {
    const logits = await step(beams.map((b) => [...b.tokens]));
    if (logits.length !== beams.length) {
      throw new Error(`beamSearch: step returned ${logits.length} logit vectors for ${beams.length} beams`);
    }
    const candidates: Candidate[] = [];
    beams.forEach((beam, b) => {
      const norm = logSumExp(logits[b]);
      // Only a beam's own 2·numBeams best tokens can make the global 2·numBeams best.
      for (const token of topIndices(logits[b], 2 * numBeams)) {
        candidates.push({ beam: b, token, logprob: beam.logprob + logits[b][token] - norm });
      }
    });
    candidates.sort((x, y) => y.logprob - x.logprob || x.beam - y.beam || x.token - y.token);

    const next: Beam[] = [];
    for (let rank = 0; rank < Math.min(candidates.length, 2 * numBeams) && next.length < numBeams; rank++) {
      const c = candidates[rank];
      const tokens = beams[c.beam].tokens;
      if (!eos.has(c.token)) next.push({ tokens: [...tokens, c.token], logprob: c.logprob });
      else if (rank < numBeams) {
        addFinished({ tokens: [...tokens], logprob: c.logprob, score: score(c.logprob, length), finishReason: 'stop' });
      }
    }
    beams = next; // best first: built in candidate order
    if (length === maxNewTokens) {
      for (const b of beams) addFinished({ ...b, score: score(b.logprob, length), finishReason: 'length' });
      break;
    }
    if (done(beams, length)) break;
  }
  if (finished.length === 0) throw new Error('beamSearch: no token had a finite logit');
  return finished[0];
}
