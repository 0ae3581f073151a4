/**
 * Pooling and normalisation as a sentence-transformers repo says: `modules.json` lists the modules after the
 * transformer (Pooling, Normalize), the Pooling module's `config.json` (usually `1_Pooling/config.json`) picks
 * the mode. Pooling runs on the CPU over the last hidden states the model read back: it is one pass over
 * [tokens × hidden] floats, small next to the forward pass.
 *
 * Without modules.json: mean pooling for encoders (what sentence-transformers does for a plain transformers
 * checkpoint) and last-token pooling for decoders (causal attention: only the last token has seen the whole
 * text), both normalised to unit length as OpenAI's embeddings are, so a dot product is the cosine similarity.
 */
import { ModelConfigError } from '../model/config';
import type { ModelFiles } from '../model/files';
import { isJsonObject, type JsonObject } from '../util/json';

/** The sentence-transformers files an embedding load reads, where the repo has them (the Pooling folder as usually named). */
export const SENTENCE_TRANSFORMERS_FILES = ['modules.json', '1_Pooling/config.json', 'sentence_bert_config.json'] as const;

export type PoolingMode = 'mean' | 'cls' | 'lasttoken' | 'max';

export interface PoolingConfig {
  mode: PoolingMode;
  /** Scale the embedding to unit length (a Normalize module). */
  normalize: boolean;
  /** Where the choice came from: the file read, or the default taken. */
  source: string;
  /**
   * The Pooling config's include_prompt (default true). False asks sentence-transformers to leave an instruction
   * prefix's tokens out of mean and max pooling; CLS and last-token pooling take one token whatever it says.
   */
  includePrompt: boolean;
}

/** sentence-transformers' Pooling flags, by the mode each selects. */
const POOLING_FLAGS: Readonly<Record<string, PoolingMode>> = {
  pooling_mode_mean_tokens: 'mean',
  pooling_mode_cls_token: 'cls',
  pooling_mode_lasttoken: 'lasttoken',
  pooling_mode_max_tokens: 'max',
};
/** Flags of modes not served: refused by name rather than pooled another way. */
const UNSUPPORTED_FLAGS = ['pooling_mode_mean_sqrt_len_tokens', 'pooling_mode_weightedmean_tokens'];
const ST = 'sentence_transformers.models.';

/** A JSON file of the repo, or undefined where it has none; ModelConfigError where it does not parse. */
export async function readJsonFile(files: ModelFiles, file: string): Promise<unknown> {
  const text = await files.text(file);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ModelConfigError(file, `is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
}

/** The pooling a model's files ask for; `decoder` picks the default when there is no modules.json. */
export async function readPoolingConfig(files: ModelFiles, decoder: boolean): Promise<PoolingConfig> {
  const modules = await readJsonFile(files, 'modules.json');
  if (modules === undefined) {
    return decoder
      ? { mode: 'lasttoken', normalize: true, source: 'default for decoders (no modules.json)', includePrompt: true }
      : { mode: 'mean', normalize: true, source: 'default for encoders (no modules.json)', includePrompt: true };
  }
  if (!Array.isArray(modules) || !modules.every(isJsonObject)) throw new ModelConfigError('modules.json', 'must be a list of modules');
  let pooling: JsonObject | undefined;
  let normalize = false;
  for (const [i, module] of modules.entries()) {
    const type = typeof module.type === 'string' ? module.type : '';
    if (!type.startsWith(ST)) throw new ModelConfigError(`modules.json[${i}].type`, `"${type}" is not a sentence-transformers module`);
    switch (type.slice(ST.length)) {
      case 'Transformer':
        if (i !== 0) throw new ModelConfigError(`modules.json[${i}]`, 'the Transformer module must come first');
        break;
      case 'Pooling':
        if (typeof module.path !== 'string') throw new ModelConfigError(`modules.json[${i}].path`, 'must name the Pooling folder');
        pooling = module;
        break;
      case 'Normalize':
        normalize = true;
        break;
      default:
        // A Dense or other module after pooling changes the vector: serving the embedding without it would be wrong.
        throw new ModelConfigError(`modules.json[${i}].type`, `${type} is not supported (only Transformer, Pooling and Normalize)`);
    }
  }
  if (!pooling) throw new ModelConfigError('modules.json', 'has no Pooling module');
  const file = `${String(pooling.path)}/config.json`;
  const config = await readJsonFile(files, file);
  if (!isJsonObject(config)) throw new ModelConfigError(file, 'is missing or not a JSON object');
  for (const flag of UNSUPPORTED_FLAGS) if (config[flag] === true) throw new ModelConfigError(`${file} ${flag}`, 'this pooling mode is not supported');
  const modes = Object.entries(POOLING_FLAGS).filter(([flag]) => config[flag] === true).map(([, mode]) => mode);
  if (modes.length !== 1) {
    throw new ModelConfigError(file, `must select exactly one pooling mode (mean, cls, lasttoken or max), found ${modes.length === 0 ? 'none' : modes.join(' + ')}`);
  }
  const includePrompt = config.include_prompt ?? true;
  if (typeof includePrompt !== 'boolean') throw new ModelConfigError(`${file} include_prompt`, 'must be true or false');
  return { mode: modes[0], normalize, source: `modules.json, ${file}`, includePrompt };
}

/** One embedding from an input's hidden states [tokens × hidden], row-major. */
export function pool(hidden: Float32Array, hiddenSize: number, mode: PoolingMode): Float32Array {
  const tokens = hidden.length / hiddenSize;
  if (!Number.isInteger(tokens) || tokens < 1) throw new RangeError(`pool: ${hidden.length} values are not whole rows of ${hiddenSize}`);
  switch (mode) {
    case 'cls':
      return hidden.slice(0, hiddenSize);
    case 'lasttoken':
      return hidden.slice((tokens - 1) * hiddenSize);
    case 'mean': {
      // Summed in f64: a long input's f32 running sum loses the small rows.
      const sum = new Float64Array(hiddenSize);
      for (let t = 0; t < tokens; t++) for (let d = 0; d < hiddenSize; d++) sum[d] += hidden[t * hiddenSize + d];
      return Float32Array.from(sum, (v) => v / tokens);
    }
    case 'max': {
      const out = hidden.slice(0, hiddenSize);
      for (let t = 1; t < tokens; t++) for (let d = 0; d < hiddenSize; d++) out[d] = Math.max(out[d], hidden[t * hiddenSize + d]);
      return out;
    }
  }
}

/**
 * The first `dimensions` values (Matryoshka models are trained so a prefix is an embedding itself), scaled to
 * unit length when `normalize`, as torch.nn.functional.normalize does (a zero vector stays zero).
 */
export function finishEmbedding(pooled: Float32Array, dimensions: number, normalize: boolean): Float32Array {
  const out = pooled.slice(0, dimensions);
  if (!normalize) return out;
  let sq = 0;
  for (const v of out) sq += v * v;
  const scale = 1 / Math.max(Math.sqrt(sq), 1e-12);
  for (let i = 0; i < out.length; i++) out[i] *= scale;
  return out;
}
