/**
 * Sampling options: the OpenAI-style names a caller passes (snake_case, as in request bodies), merged over
 * a model's generation_config.json defaults, validated, and resolved into the camelCase form the sampler
 * reads. Options arrive as untrusted JSON-ish values, so everything is checked at run time and read as own
 * properties only (a `__proto__` key cannot change anything).
 */
import { isJsonObject, ownField } from '../util/json';
import { MAX_TOP_LOGPROBS } from './logprobs';

/**
 * Upper bound on temperature, as in the OpenAI API: beyond 2 the output is noise anyway, and the bound
 * catches typos such as 70 for 0.7.
 */
export const MAX_TEMPERATURE = 2;
/** At most this many stop strings, as in the OpenAI API. */
export const MAX_STOP_STRINGS = 4;
/** Each beam reruns the model, so more than this is never what a browser user wants. */
export const MAX_BEAMS = 16;

/** What a caller may pass; every field is optional, and null reads as absent (OpenAI clients send null). */
export interface SamplingOptions {
  /** [0, MAX_TEMPERATURE]; 0 = greedy (argmax). */
  temperature?: number | null;
  /** (0, 1]; 1 = disabled. */
  top_p?: number | null;
  /** Integer ≥ 0; 0 = disabled. */
  top_k?: number | null;
  /** [0, 1]; 0 = disabled. */
  min_p?: number | null;
  /** > 0; 1 = disabled. HF semantics, over prompt and generated tokens. */
  repetition_penalty?: number | null;
  /** [-2, 2]; OpenAI semantics, over generated tokens only. */
  frequency_penalty?: number | null;
  /** [-2, 2]; OpenAI semantics, over generated tokens only. */
  presence_penalty?: number | null;
  /** A safe integer; the same seed gives the same samples. Absent: a fresh random seed. */
  seed?: number | null;
  /** Token id (as a decimal string key, or a number key) → bias in [-100, 100] added to its logit. */
  logit_bias?: Record<string, number> | null;
  /** One stop string or up to MAX_STOP_STRINGS; each non-empty. */
  stop?: string | string[] | null;
  /** Integer ≥ 1: most tokens to generate. Absent: until EOS or the context is full. */
  max_tokens?: number | null;
  /** Integer in [1, MAX_BEAMS]; > 1 asks for beam search (non-streaming generation only). */
  num_beams?: number | null;
  /** Any finite number: beam scores are logprob / length^length_penalty. */
  length_penalty?: number | null;
  /** Report each generated token's log-probability (after processing, before sampling). */
  logprobs?: boolean | null;
  /** Integer in [0, MAX_TOP_LOGPROBS]: the most probable alternatives to report per token; needs `logprobs`. */
  top_logprobs?: number | null;
}

export type SamplingOptionName = keyof SamplingOptions;

/** The option names resolveSamplingOptions accepts; anything else is an InvalidOptionError. */
export const SAMPLING_OPTION_NAMES: readonly SamplingOptionName[] = [
  'temperature',
  'top_p',
  'top_k',
  'min_p',
  'repetition_penalty',
  'frequency_penalty',
  'presence_penalty',
  'seed',
  'logit_bias',
  'stop',
  'max_tokens',
  'num_beams',
  'length_penalty',
  'logprobs',
  'top_logprobs',
];

/** Validated options with every default filled in; a value that disables a stage is its neutral value. */
export interface ResolvedSamplingOptions {
  /** 0 = greedy. */
  temperature: number;
  topP: number;
  topK: number;
  minP: number;
  repetitionPenalty: number;
  frequencyPenalty: number;
  presencePenalty: number;
  /** The seed in use, drawn at random when the caller gave none, so a run can be replayed. */
  seed: number;
  logitBias: ReadonlyMap<number, number>;
  stop: readonly string[];
  maxTokens: number | null;
  numBeams: number;
  lengthPenalty: number;
  logprobs: boolean;
  topLogprobs: number;
}

/** An option is unknown, of the wrong type, or out of range. */
export class InvalidOptionError extends Error {
  override readonly name = 'InvalidOptionError';
  constructor(
    /** The option at fault as spelled by the caller, or `generation_config.<name>` when the value came from there. */
    readonly option: string,
    /** What would have been accepted: a range, or for an unknown option the list of known ones. */
    readonly allowed: string,
    readonly received: unknown,
  ) {
    super(`Invalid option "${option}" = ${describe(received)}: expected ${allowed}`);
  }
}

function describe(value: unknown): string {
  const text = typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? String(value));
  return text.length > 100 ? `${text.slice(0, 100)}…` : text;
}

/** A number satisfying `ok` (NaN fails every range check), else an InvalidOptionError. */
function checkNumber(option: string, value: unknown, ok: (v: number) => boolean, allowed: string): number {
  if (typeof value !== 'number' || !ok(value)) throw new InvalidOptionError(option, allowed, value);
  return value;
}

const isPresent = (v: unknown): boolean => v !== undefined && v !== null;

/**
 * `stop` as a list: a string, or an array of at most MAX_STOP_STRINGS strings, each non-empty (an empty
 * stop string would match before any text). Absent or null: no stop strings.
 */
export function parseStop(value: unknown, option = 'stop'): string[] {
  if (!isPresent(value)) return [];
  const list: unknown[] = Array.isArray(value) ? value : [value];
  const allowed = `a non-empty string or an array of at most ${MAX_STOP_STRINGS} non-empty strings`;
  if (list.length > MAX_STOP_STRINGS) throw new InvalidOptionError(option, allowed, value);
  const stops: string[] = [];
  for (const s of list) {
    if (typeof s !== 'string' || s.length === 0) throw new InvalidOptionError(option, allowed, value);
    stops.push(s);
  }
  return stops;
}

function parseLogitBias(value: unknown, vocabSize: number): Map<number, number> {
  const bias = new Map<number, number>();
  if (!isPresent(value)) return bias;
  const allowedIds = `an object mapping token ids in [0, ${vocabSize - 1}] to biases in [-100, 100]`;
  if (!isJsonObject(value)) throw new InvalidOptionError('logit_bias', allowedIds, value);
  for (const key of Object.keys(value)) {
    // Number keys arrive as strings too; only canonical decimals ("7", not "07" or "7.0") name a token.
    const id = Number(key);
    if (!/^(0|[1-9]\d*)$/.test(key) || id >= vocabSize) throw new InvalidOptionError('logit_bias', allowedIds, key);
    bias.set(id, checkNumber('logit_bias', ownField(value, key), (b) => b >= -100 && b <= 100, allowedIds));
  }
  return bias;
}

/** A fresh 32-bit seed for a request that asked for none. */
function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/**
 * Merges `user` over the defaults in `generationConfig` (a parsed generation_config.json, or null) and
 * validates the result. The user wins field by field. From generation_config.json only temperature, top_p,
 * top_k, min_p, repetition_penalty and do_sample are read; `do_sample: false` makes greedy the default
 * (temperature 0), which a user temperature overrides. A default a user overrides is not validated, so
 * a bad value there only fails when it is used; the error then names `generation_config.<field>`.
 *
 * Defaults when neither source gives a value: every stage disabled (temperature 1, top_p 1, top_k 0 — not
 * HF's implicit 50 —, min_p 0, penalties neutral), no stop strings, no max_tokens, one beam.
 *
 * @param limits.vocabSize bounds the token ids in logit_bias.
 * @throws InvalidOptionError naming the first bad option.
 */
export function resolveSamplingOptions(
  user: unknown,
  generationConfig: unknown,
  limits: { vocabSize: number },
): ResolvedSamplingOptions {
  const u = isPresent(user) ? user : {};
  if (!isJsonObject(u)) throw new InvalidOptionError('(options)', 'an object of sampling options', u);
  const gen = isPresent(generationConfig) ? generationConfig : {};
  if (!isJsonObject(gen)) throw new InvalidOptionError('generation_config', 'a generation_config.json object', gen);
  const names: readonly string[] = SAMPLING_OPTION_NAMES;
  for (const key of Object.keys(u)) {
    if (!names.includes(key)) {
      throw new InvalidOptionError(key, `a known sampling option: ${names.join(', ')}`, ownField(u, key));
    }
  }

  /** The user's value, else generation_config's, else `fallback`; with the name to report it under. */
  const merged = (key: SamplingOptionName, fallback: number): { option: string; value: unknown } => {
    if (isPresent(ownField(u, key))) return { option: key, value: ownField(u, key) };
    if (isPresent(ownField(gen, key))) return { option: `generation_config.${key}`, value: ownField(gen, key) };
    return { option: key, value: fallback };
  };
  /** The user's value or `fallback`: options generation_config.json does not supply. */
  const userOnly = (key: SamplingOptionName, fallback: number): { option: string; value: unknown } => ({
    option: key,
    value: isPresent(ownField(u, key)) ? ownField(u, key) : fallback,
  });

  const doSample = ownField(gen, 'do_sample');
  if (isPresent(doSample) && typeof doSample !== 'boolean') {
    throw new InvalidOptionError('generation_config.do_sample', 'true or false', doSample);
  }
  const temperature =
    !isPresent(ownField(u, 'temperature')) && doSample === false
      ? { option: 'generation_config.do_sample', value: 0 }
      : merged('temperature', 1);

  const inRange = (lo: number, hi: number) => (v: number) => v >= lo && v <= hi;
  const intAtLeast = (lo: number) => (v: number) => Number.isSafeInteger(v) && v >= lo;
  const check = (m: { option: string; value: unknown }, ok: (v: number) => boolean, allowed: string): number =>
    checkNumber(m.option, m.value, ok, allowed);

  const logprobs = ownField(u, 'logprobs');
  if (isPresent(logprobs) && typeof logprobs !== 'boolean') throw new InvalidOptionError('logprobs', 'true or false', logprobs);
  const topLogprobs = ownField(u, 'top_logprobs');
  if (isPresent(topLogprobs) && logprobs !== true) throw new InvalidOptionError('top_logprobs', 'to be set only with logprobs: true', topLogprobs);
  const maxTokens = ownField(u, 'max_tokens');
  const seed = ownField(u, 'seed');
  return {
    temperature: check(temperature, inRange(0, MAX_TEMPERATURE), `a number in [0, ${MAX_TEMPERATURE}]`),
    topP: check(merged('top_p', 1), (v) => v > 0 && v <= 1, 'a number in (0, 1]'),
    topK: check(merged('top_k', 0), intAtLeast(0), 'an integer ≥ 0 (0 = disabled)'),
    minP: check(merged('min_p', 0), inRange(0, 1), 'a number in [0, 1]'),
    repetitionPenalty: check(
      merged('repetition_penalty', 1),
      (v) => v > 0 && Number.isFinite(v),
      'a finite number > 0',
    ),
    frequencyPenalty: check(userOnly('frequency_penalty', 0), inRange(-2, 2), 'a number in [-2, 2]'),
    presencePenalty: check(userOnly('presence_penalty', 0), inRange(-2, 2), 'a number in [-2, 2]'),
    seed: isPresent(seed) ? checkNumber('seed', seed, Number.isSafeInteger, 'a safe integer') : randomSeed(),
    logitBias: parseLogitBias(ownField(u, 'logit_bias'), limits.vocabSize),
    stop: parseStop(ownField(u, 'stop')),
    maxTokens: isPresent(maxTokens) ? checkNumber('max_tokens', maxTokens, intAtLeast(1), 'an integer ≥ 1') : null,
    numBeams: check(
      userOnly('num_beams', 1),
      (v) => intAtLeast(1)(v) && v <= MAX_BEAMS,
      `an integer in [1, ${MAX_BEAMS}]`,
    ),
    lengthPenalty: check(userOnly('length_penalty', 1), Number.isFinite, 'a finite number'),
    logprobs: logprobs === true,
    topLogprobs: check(
      userOnly('top_logprobs', 0),
      (v) => intAtLeast(0)(v) && v <= MAX_TOP_LOGPROBS,
      `an integer in [0, ${MAX_TOP_LOGPROBS}]`,
    ),
  };
}
