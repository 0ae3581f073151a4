/**
 * Hugging Face `config.json` (+ `generation_config.json`) → one typed `ModelSpec` that the loader, the GPU
 * runtime and the CPU reference all read. Everything architecture-specific about hyperparameters lives
 * here; tensor names live in weights.ts.
 *
 * Fields are read one by one as own properties, never by spreading or indexing with config-provided keys,
 * so `__proto__` / `constructor` keys in a hostile config.json cannot change anything.
 */
import type { RopeScaling } from '../ops/rope';
import { isJsonObject, ownField, type JsonObject } from '../util/json';

/** The architectures the runtime implements; `mistral` configs map to `llama`. */
export type Arch = 'llama' | 'qwen2' | 'qwen3' | 'gpt2';

/** Values of `model_type` we accept. */
export const SUPPORTED_MODEL_TYPES: readonly string[] = ['llama', 'mistral', 'qwen2', 'qwen3', 'gpt2'];

export type { RopeScaling };

export interface RopeSpec {
  /** Base of the inverse frequencies: invFreq[i] = theta^(-2i / rotaryDim). */
  theta: number;
  /** Leading dims of each head that are rotated (= headDim for every supported arch). */
  rotaryDim: number;
  /** Pairs (i, i + rotaryDim/2) are rotated together, as in HF `rotate_half`. */
  layout: 'rotate-half';
  scaling: RopeScaling | null;
}

export interface ModelSpec {
  arch: Arch;
  /** `model_type` as written in config.json (e.g. 'mistral' for arch 'llama'). */
  modelType: string;
  /** V: rows of the embedding and of the LM head. */
  vocabSize: number;
  /** D: width of the residual stream. */
  hiddenSize: number;
  /** I: width of the MLP's inner layer (each of gate and up in a gated MLP). */
  intermediateSize: number;
  numLayers: number;
  /** nH: query heads. */
  numHeads: number;
  /** nKV: key/value heads; nH is a multiple of it (grouped-query attention when smaller). */
  numKvHeads: number;
  /** hd: width of one head; nH·hd may differ from D (Qwen3, Llama-3.2-1B keep it explicit). */
  headDim: number;
  /** Longest sequence (prompt + generated) the model supports; also the rows of the position embedding. */
  maxContext: number;
  /** Pre-attention, pre-MLP and final norm; 'layer' has a bias, 'rms' does not. */
  norm: { kind: 'rms' | 'layer'; eps: number };
  /** 'silu' (SwiGLU when gated) or 'gelu_tanh' (GPT-2's gelu_new). */
  activation: 'silu' | 'gelu_tanh';
  /** down(act(gate(x)) * up(x)) when true; down(act(up(x))) when false. */
  gatedMlp: boolean;
  /** Rotary position embedding on q and k; null for learned absolute positions (GPT-2). */
  rope: RopeSpec | null;
  /** q, k and v projections have biases [nH·hd], [nKV·hd], [nKV·hd]. */
  qkvBias: boolean;
  /** The attention output projection (o_proj / c_proj) has a bias [D]. */
  outputBias: boolean;
  /** MLP projections have biases (GPT-2; Llama with mlp_bias). */
  mlpBias: boolean;
  /** Per-head RMSNorm (weight [hd], eps = norm.eps) on q and k before rope (Qwen3). */
  qkNorm: boolean;
  /** LM head [V, D] is the token embedding itself. */
  tiedEmbeddings: boolean;
  /** A learned position embedding [maxContext, D] is added to the token embedding (GPT-2). */
  learnedPositions: boolean;
  /** Multiplier of q·k before softmax: 1/sqrt(hd), or 1 for GPT-2 with scale_attn_weights false. */
  attentionScale: number;
  /** Token that starts a sequence, or null when the model has none. */
  bosTokenId: number | null;
  /** Tokens that end generation: config.json's and generation_config.json's, united, in order. */
  eosTokenIds: number[];
}

/** config.json names a model_type this runtime does not implement. */
export class UnsupportedModelError extends Error {
  override readonly name = 'UnsupportedModelError';
  constructor(readonly modelType: string) {
    super(
      `Model type "${modelType}" is not supported. Supported model types: ${SUPPORTED_MODEL_TYPES.join(', ')}.`,
    );
  }
}

/** A config.json field is missing, malformed, or asks for something the runtime cannot do. */
export class ModelConfigError extends Error {
  override readonly name = 'ModelConfigError';
  constructor(
    readonly field: string,
    readonly detail: string,
  ) {
    super(`Model config field "${field}": ${detail}`);
  }
}

function describe(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

/** Reads typed fields of one JSON object, naming the field (with its path) in every error. */
class Fields {
  constructor(
    private readonly obj: JsonObject,
    private readonly path = '',
  ) {}

  private name(key: string): string {
    return this.path + key;
  }

  has(key: string): boolean {
    const v = ownField(this.obj, key);
    return v !== undefined && v !== null;
  }

  /** A positive integer; `fallback` (HF's default) when absent or null, an error when absent without one. */
  int(key: string, fallback?: number): number {
    const v = ownField(this.obj, key);
    if (v === undefined || v === null) {
      if (fallback === undefined) throw new ModelConfigError(this.name(key), 'is required but missing');
      return fallback;
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
      throw new ModelConfigError(this.name(key), `must be a positive integer, got ${describe(v)}`);
    }
    return v;
  }

  /** A finite positive number. */
  positive(key: string, fallback?: number): number {
    const v = ownField(this.obj, key);
    if (v === undefined || v === null) {
      if (fallback === undefined) throw new ModelConfigError(this.name(key), 'is required but missing');
      return fallback;
    }
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new ModelConfigError(this.name(key), `must be a positive number, got ${describe(v)}`);
    }
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = ownField(this.obj, key);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw new ModelConfigError(this.name(key), `must be true or false, got ${describe(v)}`);
    return v;
  }

  string(key: string, fallback?: string): string {
    const v = ownField(this.obj, key);
    if (v === undefined || v === null) {
      if (fallback === undefined) throw new ModelConfigError(this.name(key), 'is required but missing');
      return fallback;
    }
    if (typeof v !== 'string') throw new ModelConfigError(this.name(key), `must be a string, got ${describe(v)}`);
    return v;
  }

  /** A token id (0 is valid) or null. */
  tokenId(key: string): number | null {
    const v = ownField(this.obj, key);
    if (v === undefined || v === null) return null;
    if (!isTokenId(v)) throw new ModelConfigError(this.name(key), `must be a token id, got ${describe(v)}`);
    return v;
  }

  /** eos_token_id: a number, an array of numbers, or absent. */
  tokenIds(key: string): number[] {
    const v = ownField(this.obj, key);
    if (v === undefined || v === null) return [];
    if (isTokenId(v)) return [v];
    if (Array.isArray(v) && v.every(isTokenId)) return v;
    throw new ModelConfigError(this.name(key), `must be a token id or an array of them, got ${describe(v)}`);
  }

  /** A nested object (rope_scaling), or null when absent. */
  object(key: string): Fields | null {
    const v = ownField(this.obj, key);
    if (v === undefined || v === null) return null;
    if (!isJsonObject(v)) throw new ModelConfigError(this.name(key), `must be an object, got ${describe(v)}`);
    return new Fields(v, `${this.name(key)}.`);
  }
}

function isTokenId(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Builds the ModelSpec for a config.json object, with generation_config.json's EOS/BOS ids merged in.
 * Throws UnsupportedModelError for an unknown model_type and ModelConfigError naming the bad field.
 */
export function parseModelConfig(configJson: unknown, generationConfig?: unknown): ModelSpec {
  if (!isJsonObject(configJson)) throw new ModelConfigError('(root)', 'config.json must be a JSON object');
  if (generationConfig !== undefined && generationConfig !== null && !isJsonObject(generationConfig)) {
    throw new ModelConfigError('(generation_config root)', 'generation_config.json must be a JSON object');
  }
  const c = new Fields(configJson);
  const gen = isJsonObject(generationConfig) ? new Fields(generationConfig, 'generation_config.') : null;
  const modelType = c.string('model_type');
  // A switch, not a lookup table: a model_type of "constructor" or "__proto__" must not find anything.
  let spec: ModelSpec;
  switch (modelType) {
    case 'llama':
    case 'mistral':
      spec = parseLlamaLike(c, modelType, 'llama');
      break;
    case 'qwen2':
    case 'qwen3':
      spec = parseLlamaLike(c, modelType, modelType);
      break;
    case 'gpt2':
      spec = parseGpt2(c);
      break;
    default:
      throw new UnsupportedModelError(modelType);
  }
  const eos = [...c.tokenIds('eos_token_id'), ...(gen?.tokenIds('eos_token_id') ?? [])];
  spec.eosTokenIds = [...new Set(eos)];
  spec.bosTokenId = c.tokenId('bos_token_id') ?? gen?.tokenId('bos_token_id') ?? null;
  const outside = (id: number) => id >= spec.vocabSize;
  if (spec.eosTokenIds.some(outside)) {
    const ids = describe(spec.eosTokenIds);
    throw new ModelConfigError('eos_token_id', `${ids} is outside the vocabulary (${spec.vocabSize})`);
  }
  if (spec.bosTokenId !== null && outside(spec.bosTokenId)) {
    throw new ModelConfigError('bos_token_id', `${spec.bosTokenId} is outside the vocabulary (${spec.vocabSize})`);
  }
  return spec;
}

/** Llama, Mistral, Qwen2 and Qwen3 share HF's Llama config schema, with these differences. */
function parseLlamaLike(c: Fields, modelType: string, arch: 'llama' | 'qwen2' | 'qwen3'): ModelSpec {
  const hiddenSize = c.int('hidden_size');
  const numHeads = c.int('num_attention_heads');
  const numKvHeads = c.int('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ModelConfigError(
      'num_key_value_heads',
      `${numKvHeads} must divide num_attention_heads (${numHeads}) for grouped-query attention`,
    );
  }
  if (!c.has('head_dim') && hiddenSize % numHeads !== 0) {
    throw new ModelConfigError(
      'head_dim',
      `missing, and hidden_size ${hiddenSize} is not a multiple of ${numHeads} heads`,
    );
  }
  const headDim = c.int('head_dim', hiddenSize / numHeads);
  if (headDim % 2 !== 0) {
    throw new ModelConfigError('head_dim', `rotary embedding needs an even head_dim, got ${headDim}`);
  }
  const maxContext = c.int('max_position_embeddings');

  const act = c.string('hidden_act', 'silu');
  if (act !== 'silu' && act !== 'swish') {
    throw new ModelConfigError('hidden_act', `"${act}" is not supported for ${modelType} (only "silu")`);
  }

  // Sliding-window attention changes which keys are visible; we only run it when the window covers the
  // whole context, where it is the same as full attention.
  const windowed = modelType === 'mistral' || c.bool('use_sliding_window', false);
  if (windowed && c.has('sliding_window')) {
    const w = c.int('sliding_window');
    if (w < maxContext) {
      throw new ModelConfigError(
        'sliding_window',
        `sliding-window attention (window ${w} < context ${maxContext}) is not supported`,
      );
    }
  }

  // attention_bias covers q, k, v and o (Llama, Qwen3); Qwen2 always has q/k/v biases and never an o
  // bias. Only Llama's MLP reads mlp_bias; the others have none whatever the config says.
  const attentionBias = arch !== 'qwen2' && c.bool('attention_bias', false);
  const mlpBias = arch === 'llama' && c.bool('mlp_bias', false);

  return {
    arch,
    modelType,
    vocabSize: c.int('vocab_size'),
    hiddenSize,
    intermediateSize: c.int('intermediate_size'),
    numLayers: c.int('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    maxContext,
    norm: { kind: 'rms', eps: c.positive('rms_norm_eps', 1e-6) },
    activation: 'silu',
    gatedMlp: true,
    rope: parseRope(c, headDim),
    qkvBias: arch === 'qwen2' || attentionBias,
    outputBias: attentionBias,
    mlpBias,
    qkNorm: arch === 'qwen3',
    tiedEmbeddings: c.bool('tie_word_embeddings', false),
    learnedPositions: false,
    attentionScale: 1 / Math.sqrt(headDim),
    bosTokenId: null,
    eosTokenIds: [],
  };
}

/**
 * rope_theta and rope_scaling at the top level (transformers 4.x) or both inside rope_parameters
 * (transformers 5). 'default' scaling means none.
 */
function parseRope(c: Fields, headDim: number): RopeSpec {
  const params = c.object('rope_parameters');
  const holder = params ?? c;
  const theta = holder.positive('rope_theta', 10000);
  const scalingFields = params ?? c.object('rope_scaling');
  if (c.has('partial_rotary_factor') && c.positive('partial_rotary_factor') !== 1) {
    throw new ModelConfigError('partial_rotary_factor', 'partial rotary embeddings are not supported');
  }
  let scaling: RopeScaling | null = null;
  if (scalingFields) {
    // Older configs spell the key "type".
    const type = scalingFields.has('rope_type')
      ? scalingFields.string('rope_type')
      : scalingFields.string('type', 'default');
    if (type === 'linear') {
      scaling = { type: 'linear', factor: scalingFields.positive('factor') };
    } else if (type === 'llama3') {
      scaling = {
        type: 'llama3',
        factor: scalingFields.positive('factor'),
        lowFreqFactor: scalingFields.positive('low_freq_factor'),
        highFreqFactor: scalingFields.positive('high_freq_factor'),
        originalMaxPositionEmbeddings: scalingFields.int('original_max_position_embeddings'),
      };
      if (scaling.highFreqFactor <= scaling.lowFreqFactor) {
        throw new ModelConfigError('rope_scaling.high_freq_factor', 'must be greater than low_freq_factor');
      }
    } else if (type !== 'default') {
      throw new ModelConfigError('rope_scaling', `rope type "${type}" is not supported (only linear and llama3)`);
    }
  }
  return { theta, rotaryDim: headDim, layout: 'rotate-half', scaling };
}

function parseGpt2(c: Fields): ModelSpec {
  const hiddenSize = c.int('n_embd');
  const numHeads = c.int('n_head');
  if (hiddenSize % numHeads !== 0) {
    throw new ModelConfigError('n_head', `n_embd ${hiddenSize} is not a multiple of n_head ${numHeads}`);
  }
  const headDim = hiddenSize / numHeads;
  const act = c.string('activation_function', 'gelu_new');
  if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') {
    throw new ModelConfigError('activation_function', `"${act}" is not supported for gpt2 (only gelu_new)`);
  }
  if (c.bool('scale_attn_by_inverse_layer_idx', false)) {
    throw new ModelConfigError('scale_attn_by_inverse_layer_idx', 'per-layer attention scaling is not supported');
  }
  if (c.bool('add_cross_attention', false)) {
    throw new ModelConfigError('add_cross_attention', 'encoder-decoder GPT-2 is not supported');
  }
  return {
    arch: 'gpt2',
    modelType: 'gpt2',
    vocabSize: c.int('vocab_size'),
    hiddenSize,
    intermediateSize: c.int('n_inner', 4 * hiddenSize),
    numLayers: c.int('n_layer'),
    numHeads,
    numKvHeads: numHeads,
    headDim,
    maxContext: c.int('n_positions'),
    norm: { kind: 'layer', eps: c.positive('layer_norm_epsilon', 1e-5) },
    activation: 'gelu_tanh',
    gatedMlp: false,
    rope: null,
    qkvBias: true,
    outputBias: true,
    mlpBias: true,
    qkNorm: false,
    // PretrainedConfig's default is true, and GPT-2 checkpoints rely on it.
    tiedEmbeddings: c.bool('tie_word_embeddings', true),
    learnedPositions: true,
    attentionScale: c.bool('scale_attn_weights', true) ? 1 / Math.sqrt(headDim) : 1,
    bosTokenId: null,
    eosTokenIds: [],
  };
}
