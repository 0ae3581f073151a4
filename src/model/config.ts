/**
 * Hugging Face `config.json` (+ `generation_config.json`) → one typed `ModelSpec` that the loader, the GPU
 * runtime and the CPU reference all read. Which fields each model_type reads, under which names, and its
 * feature flags come from the architecture table (architectures.ts); this file reads them.
 *
 * Fields are read one by one as own properties, never by spreading or indexing with config-provided keys,
 * so `__proto__` / `constructor` keys in a hostile config.json cannot change anything.
 */
import { isJsonObject, ownField, type JsonObject } from '../util/json';
import { ENCODER_MODEL_TYPES } from './encoder/encoder-model';
import type { RopeScaling } from './rope-table';
import { fromF16, toF16 } from '../gpu/f16';
import { ARCHITECTURES, isModelType, type Arch, type Architecture, type Flag, type SkippedPart, type SlidingLayers, type TextModelOf } from './architectures';

export type { Arch, SkippedPart };

export type { RopeScaling };

export interface RopeSpec {
  /** Base of the inverse frequencies: invFreq[i] = theta^(-2i / rotaryDim). */
  theta: number;
  /** Leading dims of each head that are rotated: headDim, or headDim · partial_rotary_factor (Phi-4-mini). */
  rotaryDim: number;
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
  /**
   * Per layer: how many positions up to its own a query sees (0 = all of them; a sliding window otherwise) and
   * whether q and k get the rotary embedding (SmolLM3's NoPE layers do not).
   */
  layerAttention: LayerAttention[];
  /** Multiplier of every embedding row: 1, or √hidden rounded to the checkpoint's dtype (Gemma 3). */
  embeddingScale: number;
  /** RMSNorm weights act as 1 + w (Gemma 3: every norm, q/k norms included). */
  normPlusOne: boolean;
  /** RMSNorm of the attention and MLP outputs before each residual add (Gemma 3's post-norms). */
  sandwichNorms: boolean;
  /** The rope of layers whose `local` is set (Gemma 3's sliding layers: rope_local_base_freq, unscaled). */
  localRope: RopeSpec | null;
  /** Multiplier of q·k before softmax: 1/sqrt(hd), or 1 for GPT-2 with scale_attn_weights false. */
  attentionScale: number;
  /** Token that starts a sequence, or null when the model has none. */
  bosTokenId: number | null;
  /** Tokens that end generation: config.json's and generation_config.json's, united, in order. */
  eosTokenIds: number[];
  /** Parts of a multimodal checkpoint that are not loaded (Gemma 3's vision tower): the model runs text-only. */
  skippedParts: readonly SkippedPart[];
}

export interface LayerAttention {
  /** Sliding window: positions p−window+1..p are attended; 0 = every position up to p. */
  window: number;
  rope: boolean;
  /** Rotate with spec.localRope instead of spec.rope (Gemma 3's sliding layers). */
  local?: true;
}

/** config.json names a model_type this runtime does not implement. */
export class UnsupportedModelError extends Error {
  override readonly name = 'UnsupportedModelError';
  constructor(readonly modelType: string) {
    // An encoder (BERT) is served by the embedding engine, not the chat engine.
    const encoder = ENCODER_MODEL_TYPES.some((t) => t === modelType) ? ' It is an encoder: load it with createEmbeddingEngine().' : '';
    super(`Model type "${modelType}" is not supported. Supported model types: ${Object.keys(ARCHITECTURES).join(', ')}.${encoder}`);
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

type Defaults = Architecture['defaults'];

/**
 * Reads typed fields of one JSON object, naming the field (with its path) in every error. A field the object
 * leaves out (or sets to null) takes its value from `defaults`, as transformers' config classes fill them in.
 */
export class Fields {
  constructor(
    private readonly obj: JsonObject,
    private readonly path = '',
    private readonly defaults: Defaults = undefined,
  ) {}

  /** The field's name with its path, for errors: text_config.sliding_window. */
  name(key: string): string {
    return this.path + key;
  }

  private get(key: string): unknown {
    const v = ownField(this.obj, key);
    if ((v === undefined || v === null) && this.defaults && Object.hasOwn(this.defaults, key)) return this.defaults[key];
    return v;
  }

  has(key: string): boolean {
    const v = this.get(key);
    return v !== undefined && v !== null;
  }

  /** A positive integer; `fallback` (HF's default) when absent or null, an error when absent without one. */
  int(key: string, fallback?: number): number {
    const v = this.get(key);
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
    const v = this.get(key);
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
    const v = this.get(key);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw new ModelConfigError(this.name(key), `must be true or false, got ${describe(v)}`);
    return v;
  }

  string(key: string, fallback?: string): string {
    const v = this.get(key);
    if (v === undefined || v === null) {
      if (fallback === undefined) throw new ModelConfigError(this.name(key), 'is required but missing');
      return fallback;
    }
    if (typeof v !== 'string') throw new ModelConfigError(this.name(key), `must be a string, got ${describe(v)}`);
    return v;
  }

  /** A token id (0 is valid) or null. */
  tokenId(key: string): number | null {
    const v = this.get(key);
    if (v === undefined || v === null) return null;
    if (!isTokenId(v)) throw new ModelConfigError(this.name(key), `must be a token id, got ${describe(v)}`);
    return v;
  }

  /** eos_token_id: a number, an array of numbers, or absent. */
  tokenIds(key: string): number[] {
    const v = this.get(key);
    if (v === undefined || v === null) return [];
    if (isTokenId(v)) return [v];
    if (Array.isArray(v) && v.every(isTokenId)) return v;
    throw new ModelConfigError(this.name(key), `must be a token id or an array of them, got ${describe(v)}`);
  }

  /** An array of numbers (rope_scaling's long_factor), or null when absent. */
  numberList(key: string): number[] | null {
    const v = this.get(key);
    if (v === undefined || v === null) return null;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) {
      throw new ModelConfigError(this.name(key), `must be an array of numbers, got ${describe(v)}`);
    }
    return v;
  }

  /** An array of integers (no_rope_layers), or null when absent. */
  intList(key: string): number[] | null {
    const list = this.numberList(key);
    if (list !== null && !list.every((x) => Number.isSafeInteger(x))) {
      throw new ModelConfigError(this.name(key), `must be an array of integers, got ${describe(list)}`);
    }
    return list;
  }

  /** An array of strings (layer_types), or null when absent. */
  stringList(key: string): string[] | null {
    const v = this.get(key);
    if (v === undefined || v === null) return null;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
      throw new ModelConfigError(this.name(key), `must be an array of strings, got ${describe(v)}`);
    }
    return v;
  }

  /** A nested object (rope_scaling, text_config), or null when absent; `defaults` fill in its missing fields. */
  object(key: string, defaults?: Defaults): Fields | null {
    const v = this.get(key);
    if (v === undefined || v === null) return null;
    if (!isJsonObject(v)) throw new ModelConfigError(this.name(key), `must be an object, got ${describe(v)}`);
    return new Fields(v, `${this.name(key)}.`, defaults);
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
  const top = new Fields(configJson);
  const gen = isJsonObject(generationConfig) ? new Fields(generationConfig, 'generation_config.') : null;
  const modelType = top.string('model_type');
  if (!isModelType(modelType)) throw new UnsupportedModelError(modelType);
  const a: Architecture = ARCHITECTURES[modelType];
  const c = a.textModel ? textModelFields(top, a.textModel, a.defaults) : new Fields(configJson, '', a.defaults);
  // The checkpoint's dtype is the wrapper's where the text config does not repeat it; transformers ≥ 4.56 writes "dtype".
  const dtypeOf = (f: Fields) => (f.has('torch_dtype') ? f.string('torch_dtype') : f.has('dtype') ? f.string('dtype') : null);
  const spec = parseArchitecture(c, modelType, a, dtypeOf(c) ?? (a.textModel ? dtypeOf(top) : null) ?? 'float32');
  const wrapper = a.textModel ? top : null;
  const eos = [...(wrapper?.tokenIds('eos_token_id') ?? []), ...c.tokenIds('eos_token_id'), ...(gen?.tokenIds('eos_token_id') ?? [])];
  spec.eosTokenIds = [...new Set(eos)];
  spec.bosTokenId = wrapper?.tokenId('bos_token_id') ?? c.tokenId('bos_token_id') ?? gen?.tokenId('bos_token_id') ?? null;
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

/** A multimodal wrapper's text config, with the text model's defaults; its model_type, when given, must be the expected one. */
function textModelFields(top: Fields, { configField, modelType }: TextModelOf, defaults: Defaults): Fields {
  const text = top.object(configField, defaults);
  if (text === null) throw new ModelConfigError(configField, 'is required but missing');
  if (text.has('model_type') && text.string('model_type') !== modelType) {
    throw new ModelConfigError(`${configField}.model_type`, `must be "${modelType}", got "${text.string('model_type')}"`);
  }
  return text;
}

/** The hyperparameters under the names `a.config` gives them, and the feature flags `a.features` sets or reads. */
function parseArchitecture(c: Fields, modelType: string, a: Architecture, torchDtype: string): ModelSpec {
  const names = a.config;
  const features = a.features;
  const flag = (f: Flag) => (typeof f === 'boolean' ? f : c.bool(f.field, f.fallback));
  for (const { field, detail } of features.refuse) {
    if (c.bool(field, false)) throw new ModelConfigError(c.name(field), detail);
  }
  for (const { field, detail } of features.refuseSet ?? []) {
    if (c.has(field)) throw new ModelConfigError(c.name(field), detail);
  }

  const hiddenSize = c.int(names.hiddenSize);
  const numHeads = c.int(names.numHeads);
  const numKvHeads = names.numKvHeads === null ? numHeads : c.int(names.numKvHeads, numHeads);
  if (names.numKvHeads !== null && numHeads % numKvHeads !== 0) {
    throw new ModelConfigError(
      names.numKvHeads,
      `${numKvHeads} must divide ${names.numHeads} (${numHeads}) for grouped-query attention`,
    );
  }
  if (names.headDim === null && hiddenSize % numHeads !== 0) {
    throw new ModelConfigError(names.numHeads, `${names.hiddenSize} ${hiddenSize} is not a multiple of ${names.numHeads} ${numHeads}`);
  }
  if (names.headDim !== null && !c.has(names.headDim) && hiddenSize % numHeads !== 0) {
    throw new ModelConfigError(
      names.headDim,
      `missing, and ${names.hiddenSize} ${hiddenSize} is not a multiple of ${numHeads} heads`,
    );
  }
  const headDim = names.headDim === null ? hiddenSize / numHeads : c.int(names.headDim, hiddenSize / numHeads);
  const rope = features.positions === 'rope';
  if (rope && headDim % 2 !== 0) {
    throw new ModelConfigError(names.headDim ?? names.numHeads, `rotary embedding needs an even head_dim, got ${headDim}`);
  }
  const maxContext = c.int(names.maxContext);

  const act = c.string(names.activation, features.activation.names[0]);
  if (!features.activation.names.includes(act)) {
    const only = features.activation.names[0];
    throw new ModelConfigError(names.activation, `"${act}" is not supported for ${modelType} (only "${only}")`);
  }

  const numLayers = c.int(names.numLayers);
  const ropeLayers = rope && features.noRopeLayers ? parseNoRopeLayers(c, numLayers) : Array<boolean>(numLayers).fill(rope);
  const layerAttention: LayerAttention[] = parseLayerWindows(c, features.slidingWindow, ropeLayers).map((window, l) =>
    // Gemma 3's sliding layers have their own rope.
    features.gemma && window > 0 ? { window, rope: ropeLayers[l], local: true } : { window, rope: ropeLayers[l] },
  );

  const ratio = features.defaultMlpRatio;
  return {
    arch: a.arch,
    modelType,
    vocabSize: c.int('vocab_size'),
    hiddenSize,
    intermediateSize: c.int(names.intermediateSize, ratio === undefined ? undefined : ratio * hiddenSize),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    maxContext,
    norm: { kind: features.norm.kind, eps: c.positive(names.normEps, features.norm.defaultEps) },
    activation: features.activation.kind,
    gatedMlp: features.gatedMlp,
    rope: rope ? parseRope(c, headDim, maxContext, features.partialRotary) : null,
    qkvBias: flag(features.qkvBias),
    outputBias: flag(features.outputBias),
    mlpBias: flag(features.mlpBias),
    qkNorm: features.qkNorm,
    tiedEmbeddings: c.bool('tie_word_embeddings', features.tiedEmbeddings),
    learnedPositions: features.positions === 'learned',
    layerAttention,
    embeddingScale: features.gemma ? roundToDtype(Math.sqrt(hiddenSize), torchDtype) : 1,
    normPlusOne: features.gemma === true,
    sandwichNorms: features.gemma === true,
    localRope: features.gemma ? { theta: c.positive('rope_local_base_freq', 10000), rotaryDim: headDim, scaling: null } : null,
    attentionScale: features.gemma
      ? 1 / Math.sqrt(c.positive('query_pre_attn_scalar', 256))
      : flag(features.scaleAttention)
        ? 1 / Math.sqrt(headDim)
        : 1,
    bosTokenId: null,
    eosTokenIds: [],
    skippedParts: a.textModel?.skipped ?? [],
  };
}

/**
 * `x` as the checkpoint's dtype holds it: Gemma's embedding scale is cast to the weights' dtype before the
 * multiply (bf16 turns √1152 = 33.94 into 34).
 */
function roundToDtype(x: number, torchDtype: string): number {
  if (torchDtype === 'bfloat16') {
    // Round to nearest even on the top 16 bits of the f32.
    const bits = new Uint32Array(Float32Array.of(x).buffer)[0];
    const rounded = (bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000;
    return new Float32Array(Uint32Array.of(rounded >>> 0).buffer)[0];
  }
  if (torchDtype === 'float16') return fromF16(toF16(Float32Array.of(x)))[0];
  return Math.fround(x);
}

/**
 * SmolLM3's no_rope_layers: per layer 1 (rope) or 0 (NoPE); when absent, every no_rope_layer_interval-th
 * layer is NoPE (as SmolLM3Config builds it).
 */
function parseNoRopeLayers(c: Fields, numLayers: number): boolean[] {
  const list = c.intList('no_rope_layers');
  if (list === null) {
    const interval = c.int('no_rope_layer_interval', 4);
    return Array.from({ length: numLayers }, (_, l) => (l + 1) % interval !== 0);
  }
  if (list.length < numLayers || list.some((v) => v !== 0 && v !== 1)) {
    throw new ModelConfigError('no_rope_layers', `must list 0 or 1 for each of the ${numLayers} layers`);
  }
  return list.slice(0, numLayers).map((v) => v === 1);
}

/**
 * The sliding window of each layer (0 = none), as transformers builds each model type's layer_types: every
 * layer (Mistral, Phi-3, when sliding_window is set); layers from max_window_layers on (Qwen2/3, when
 * use_sliding_window); the NoPE layers (SmolLM3, when use_sliding_window). A config's own layer_types decides
 * which layers slide when the window is on.
 */
function parseLayerWindows(c: Fields, sliding: SlidingLayers, ropeLayers: readonly boolean[]): number[] {
  const numLayers = ropeLayers.length;
  const none = Array<number>(numLayers).fill(0);
  if (sliding === 'none' || !c.has('sliding_window')) return none;
  const switched = sliding === 'fromMaxWindowLayers' || sliding === 'noRopeLayers';
  if (switched && !c.bool('use_sliding_window', false)) return none;
  const window = c.int('sliding_window');
  const types = c.stringList('layer_types');
  if (types !== null) {
    if (types.length < numLayers) throw new ModelConfigError('layer_types', `must name each of the ${numLayers} layers`);
    return types.slice(0, numLayers).map((t, l) => {
      if (t === 'sliding_attention') return window;
      if (t === 'full_attention') return 0;
      throw new ModelConfigError(`layer_types[${l}]`, `"${t}" is not supported (only sliding_attention and full_attention)`);
    });
  }
  if (sliding === 'all') return none.map(() => window);
  if (sliding === 'pattern') {
    const pattern = c.int('sliding_window_pattern', 6);
    return none.map((_, l) => ((l + 1) % pattern !== 0 ? window : 0));
  }
  if (sliding === 'noRopeLayers') return ropeLayers.map((r) => (r ? 0 : window));
  const first = c.int('max_window_layers', 28);
  return none.map((_, l) => (l >= first ? window : 0));
}

/**
 * rope_theta and rope_scaling at the top level (transformers 4.x) or both inside rope_parameters
 * (transformers 5). 'default' scaling means none. partial_rotary_factor rotates only the leading part of
 * each head (Phi-4-mini: 0.75).
 */
function parseRope(c: Fields, headDim: number, maxContext: number, partialRotary: boolean): RopeSpec {
  const params = c.object('rope_parameters');
  const holder = params ?? c;
  const theta = holder.positive('rope_theta', 10000);
  const scalingFields = params ?? c.object('rope_scaling');
  const partial = holder.has('partial_rotary_factor') ? holder.positive('partial_rotary_factor') : c.positive('partial_rotary_factor', 1);
  if (partial > 1) throw new ModelConfigError('partial_rotary_factor', `must be at most 1, got ${partial}`);
  if (partial !== 1 && !partialRotary) throw new ModelConfigError('partial_rotary_factor', 'partial rotary embeddings are not supported for this model type');
  // transformers truncates head_dim · factor to an integer.
  const rotaryDim = Math.floor(headDim * partial);
  if (rotaryDim < 2 || rotaryDim % 2 !== 0) {
    throw new ModelConfigError('partial_rotary_factor', `rotates ${rotaryDim} of ${headDim} dims; it must be an even number ≥ 2`);
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
    } else if (type === 'longrope') {
      scaling = parseLongRope(c, scalingFields, rotaryDim, maxContext);
    } else if (type !== 'default') {
      throw new ModelConfigError('rope_scaling', `rope type "${type}" is not supported (only linear, llama3 and longrope)`);
    }
  }
  return { theta, rotaryDim, scaling };
}

/**
 * LongRoPE (Phi-3.5, Phi-4-mini), as transformers' `_compute_longrope_parameters`: per-frequency short and
 * long divisors, and cos/sin scaled by attention_factor, by default √(1 + ln(s)/ln(original)) with
 * s = max_position_embeddings / original_max_position_embeddings (or rope_scaling.factor without the latter).
 */
function parseLongRope(c: Fields, scaling: Fields, rotaryDim: number, maxContext: number): RopeScaling {
  const half = rotaryDim / 2;
  const factors = (key: string) => {
    const list = scaling.numberList(key);
    if (list === null || list.length !== half || list.some((v) => !(v > 0) || !Number.isFinite(v))) {
      throw new ModelConfigError(`rope_scaling.${key}`, `must be ${half} positive numbers (one per rotated frequency)`);
    }
    return list;
  };
  const shortFactor = factors('short_factor');
  const longFactor = factors('long_factor');
  const original = scaling.has('original_max_position_embeddings')
    ? scaling.int('original_max_position_embeddings')
    : c.has('original_max_position_embeddings')
      ? c.int('original_max_position_embeddings')
      : null;
  const factor = original !== null ? maxContext / original : scaling.positive('factor', 1);
  const originalMaxPositionEmbeddings = original ?? maxContext;
  const attentionFactor = scaling.has('attention_factor')
    ? scaling.positive('attention_factor')
    : factor <= 1
      ? 1
      : Math.sqrt(1 + Math.log(factor) / Math.log(originalMaxPositionEmbeddings));
  return { type: 'longrope', shortFactor, longFactor, originalMaxPositionEmbeddings, attentionFactor };
}
