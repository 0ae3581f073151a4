/**
 * The architecture table. For each Hugging Face `model_type`: how its config.json names the hyperparameters
 * (normalised as transformers.js's configs.js does), the feature flags that make it differ from a plain
 * Llama block, and where each canonical tensor comes from in its checkpoint. The config parser, the weight
 * loader, the random-model generator and the GGUF exporter read this table; the GPU upload, the byte counts
 * and the limits check loop over the canonical tensors below. Adding a Llama-like architecture is one entry.
 */
import type { ModelSpec } from './config';

/**
 * One tensor of the canonical layout every kernel and the CPU reference use: linear weights [out, in],
 * norm weights and biases as f32 vectors.
 */
export interface CanonicalTensor {
  /** 'matrix': read by a matmul or a gather, kept f16/f32 (or quantized); 'norm'/'bias': f32 vectors. */
  kind: 'matrix' | 'norm' | 'bias';
  /** Row blocks in order; a checkpoint may store each block as a tensor of its own (q, k, v; gate, up). */
  rows(s: ModelSpec): number[];
  /** Columns of a matrix (vectors have none). */
  cols?(s: ModelSpec): number;
  /** Whether a model of this spec has the tensor. */
  present(s: ModelSpec): boolean;
  /** What the tensor is, for messages. */
  label: string;
}

const always = () => true;
const layerNorm = (s: ModelSpec) => s.norm.kind === 'layer';
const hidden = (s: ModelSpec) => [s.hiddenSize];
const qkvRows = (s: ModelSpec) => [s.numHeads * s.headDim, s.numKvHeads * s.headDim, s.numKvHeads * s.headDim];

/** The tensors of one layer, in checkpoint order (random models draw them in this order). */
export const LAYER_TENSORS = {
  attnNorm: { kind: 'norm', rows: hidden, present: always, label: 'attention norm' },
  attnNormBias: { kind: 'bias', rows: hidden, present: layerNorm, label: 'attention norm bias' },
  /** q rows, then k rows, then v rows. */
  wqkv: { kind: 'matrix', rows: qkvRows, cols: (s) => s.hiddenSize, present: always, label: 'q/k/v weight' },
  bqkv: { kind: 'bias', rows: qkvRows, present: (s) => s.qkvBias, label: 'q/k/v bias' },
  /** RMSNorm of each q (k) head before rope (Qwen3). */
  qNorm: { kind: 'norm', rows: (s) => [s.headDim], present: (s) => s.qkNorm, label: 'q norm' },
  kNorm: { kind: 'norm', rows: (s) => [s.headDim], present: (s) => s.qkNorm, label: 'k norm' },
  wo: { kind: 'matrix', rows: hidden, cols: (s) => s.numHeads * s.headDim, present: always, label: 'output projection weight' },
  bo: { kind: 'bias', rows: hidden, present: (s) => s.outputBias, label: 'output projection bias' },
  postAttnNorm: { kind: 'norm', rows: hidden, present: (s) => s.sandwichNorms, label: 'post-attention norm' },
  mlpNorm: { kind: 'norm', rows: hidden, present: always, label: 'MLP norm' },
  mlpNormBias: { kind: 'bias', rows: hidden, present: layerNorm, label: 'MLP norm bias' },
  /** Gate rows, then up rows. */
  wGateUp: {
    kind: 'matrix',
    rows: (s) => [s.intermediateSize, s.intermediateSize],
    cols: (s) => s.hiddenSize,
    present: (s) => s.gatedMlp,
    label: 'MLP gate/up weight',
  },
  bGateUp: {
    kind: 'bias',
    rows: (s) => [s.intermediateSize, s.intermediateSize],
    present: (s) => s.gatedMlp && s.mlpBias,
    label: 'MLP gate/up bias',
  },
  wUp: { kind: 'matrix', rows: (s) => [s.intermediateSize], cols: (s) => s.hiddenSize, present: (s) => !s.gatedMlp, label: 'MLP up weight' },
  bUp: { kind: 'bias', rows: (s) => [s.intermediateSize], present: (s) => !s.gatedMlp && s.mlpBias, label: 'MLP up bias' },
  wDown: { kind: 'matrix', rows: hidden, cols: (s) => s.intermediateSize, present: always, label: 'MLP down weight' },
  bDown: { kind: 'bias', rows: hidden, present: (s) => s.mlpBias, label: 'MLP down bias' },
  postMlpNorm: { kind: 'norm', rows: hidden, present: (s) => s.sandwichNorms, label: 'post-MLP norm' },
} as const satisfies Record<string, CanonicalTensor>;

export type LayerTensorName = keyof typeof LAYER_TENSORS;
export const LAYER_TENSOR_NAMES = Object.keys(LAYER_TENSORS) as LayerTensorName[];

const vocabRows = (s: ModelSpec) => [s.vocabSize];

/** The tensors outside the layers, in checkpoint order: the input side before the layers, the output side after. */
export const MODEL_TENSORS = {
  embedding: { kind: 'matrix', rows: vocabRows, cols: (s) => s.hiddenSize, present: always, label: 'embedding' },
  positionEmbedding: {
    kind: 'matrix',
    rows: (s) => [s.maxContext],
    cols: (s) => s.hiddenSize,
    present: (s) => s.learnedPositions,
    label: 'position embedding',
  },
  finalNorm: { kind: 'norm', rows: hidden, present: always, label: 'final norm' },
  finalNormBias: { kind: 'bias', rows: hidden, present: layerNorm, label: 'final norm bias' },
  /** Tied models read the embedding instead. */
  lmHead: { kind: 'matrix', rows: vocabRows, cols: (s) => s.hiddenSize, present: (s) => !s.tiedEmbeddings, label: 'LM head' },
} as const satisfies Record<string, CanonicalTensor>;

export type ModelTensorName = keyof typeof MODEL_TENSORS;
export const INPUT_TENSOR_NAMES: readonly ModelTensorName[] = ['embedding', 'positionEmbedding'];
export const OUTPUT_TENSOR_NAMES: readonly ModelTensorName[] = ['finalNorm', 'finalNormBias', 'lmHead'];

/** The canonical shape of `t` for `spec`: [rows] for vectors, [rows, cols] for matrices. */
export function canonicalShape(t: CanonicalTensor, spec: ModelSpec): number[] {
  const rows = t.rows(spec).reduce((a, b) => a + b, 0);
  return t.cols ? [rows, t.cols(spec)] : [rows];
}

/**
 * Where a canonical tensor comes from in a checkpoint: one tensor in the canonical layout; one tensor per row
 * block, concatenated by rows (q, k, v); or one tensor stored transposed (GPT-2's Conv1D keeps [in, out]).
 */
export type TensorSource = string | { blocks: readonly string[] } | { transposed: string };

export interface TensorMap {
  /** Prefixes a checkpoint may put before every name but the LM head's, tried in order on the embedding. */
  prefixes: readonly string[];
  /** Layer l's tensors are named `${layerPrefix}${l}.${name}`. */
  layerPrefix: string;
  model: { [K in ModelTensorName]?: TensorSource };
  layer: { [K in LayerTensorName]?: TensorSource };
}

/** How config.json names each hyperparameter; null where the architecture derives it instead. */
export interface ConfigNames {
  hiddenSize: string;
  intermediateSize: string;
  numLayers: string;
  numHeads: string;
  /** null: one key/value head per query head. */
  numKvHeads: string | null;
  /** null: hidden size / heads. */
  headDim: string | null;
  maxContext: string;
  normEps: string;
  activation: string;
}

/**
 * The layers a config's sliding_window applies to: none (the field is not read); all of them (Mistral, Phi-3);
 * with use_sliding_window, layers from max_window_layers on (Qwen2/3) or the NoPE layers (SmolLM3); all but every
 * sliding_window_pattern-th layer (Gemma 3).
 */
export type SlidingLayers = 'none' | 'all' | 'fromMaxWindowLayers' | 'noRopeLayers' | 'pattern';

/** A feature that is always on or off, or read from a boolean config field with a default. */
export type Flag = boolean | { field: string; fallback: boolean };

export interface Features {
  norm: { kind: 'rms' | 'layer'; defaultEps: number };
  /** The activation and the config spellings accepted for it, the first being the default. */
  activation: { kind: 'silu' | 'gelu_tanh'; names: readonly string[] };
  gatedMlp: boolean;
  /** When the intermediate size is absent: this many times the hidden size (GPT-2); absent means required. */
  defaultMlpRatio?: number;
  positions: 'rope' | 'learned';
  qkvBias: Flag;
  outputBias: Flag;
  mlpBias: Flag;
  qkNorm: boolean;
  /** Default of tie_word_embeddings. */
  tiedEmbeddings: boolean;
  /** Which layers config's sliding_window applies to (see SlidingLayers). */
  slidingWindow: SlidingLayers;
  /** Whether no_rope_layers / no_rope_layer_interval make some layers NoPE (SmolLM3). */
  noRopeLayers: boolean;
  /** Whether partial_rotary_factor is read (Phi-3/4); elsewhere a factor other than 1 is refused. */
  partialRotary: boolean;
  /**
   * Gemma 3: RMSNorm weights used as 1 + w, norms after attention and after the MLP too, embeddings scaled by
   * √hidden, q·k scaled by query_pre_attn_scalar^−½, and the sliding layers' own rope base.
   */
  gemma?: true;
  /** Config fields that must be absent or null: what they ask for is not implemented. */
  refuseSet?: readonly { field: string; detail: string }[];
  /** q·k is scaled by 1/sqrt(head_dim), or not at all. */
  scaleAttention: Flag;
  /** Boolean config fields that ask, when true, for something the runtime cannot do. */
  refuse: readonly { field: string; detail: string }[];
}

/** Canonical architecture names: model types that share one (mistral → llama) share its block. */
export type Arch = 'llama' | 'mistral' | 'qwen2' | 'qwen3' | 'gpt2' | 'phi3' | 'smollm3' | 'gemma3';

/**
 * A part of a multimodal checkpoint the runtime does not run (Gemma 3's vision tower): its config is not read,
 * its tensors are never fetched, and the spec names it (ModelSpec.skippedParts), so a caller can say the model
 * is loaded text-only instead of leaving it unsaid.
 */
export interface SkippedPart {
  /** What it is, for messages: 'vision tower'. */
  name: string;
  /** The config.json field that describes it. */
  configField: string;
  /** Prefixes of its tensor names, in each checkpoint layout. */
  tensorPrefixes: readonly string[];
}

/** A multimodal model type whose text model is an architecture of its own, its config nested in one field. */
export interface TextModelOf {
  /** The field holding the text model's config: text_config. */
  configField: string;
  /** The nested config's model_type, when it gives one. */
  modelType: string;
  skipped: readonly SkippedPart[];
}

export interface Architecture {
  arch: Arch;
  /** `architectures[0]` of a config.json written for it. */
  className: string;
  config: ConfigNames;
  features: Features;
  tensors: TensorMap;
  /**
   * The values transformers' config class gives fields a config.json leaves out, where they are not the
   * runtime's own fallbacks (Gemma 3's multimodal repos list only a handful of their text model's fields).
   */
  defaults?: Readonly<Record<string, number | string | boolean | null>>;
  /** Set for a multimodal wrapper (gemma3): its text model is read from a nested config. */
  textModel?: TextModelOf;
}

const LLAMA_CONFIG: ConfigNames = {
  hiddenSize: 'hidden_size',
  intermediateSize: 'intermediate_size',
  numLayers: 'num_hidden_layers',
  numHeads: 'num_attention_heads',
  numKvHeads: 'num_key_value_heads',
  headDim: 'head_dim',
  maxContext: 'max_position_embeddings',
  normEps: 'rms_norm_eps',
  activation: 'hidden_act',
};

const LLAMA_FEATURES: Features = {
  norm: { kind: 'rms', defaultEps: 1e-6 },
  activation: { kind: 'silu', names: ['silu', 'swish'] },
  gatedMlp: true,
  positions: 'rope',
  // attention_bias covers q, k, v and o.
  qkvBias: { field: 'attention_bias', fallback: false },
  outputBias: { field: 'attention_bias', fallback: false },
  mlpBias: { field: 'mlp_bias', fallback: false },
  qkNorm: false,
  tiedEmbeddings: false,
  slidingWindow: 'none',
  noRopeLayers: false,
  partialRotary: false,
  scaleAttention: true,
  refuse: [],
};

const attention = (name: string) => `self_attn.${name}`;

const LLAMA_TENSORS: TensorMap = {
  // A base-model checkpoint (Qwen3Model, as Qwen3-Embedding ships) names its tensors without `model.`.
  prefixes: ['model.', ''],
  layerPrefix: 'layers.',
  model: { embedding: 'embed_tokens.weight', finalNorm: 'norm.weight', lmHead: 'lm_head.weight' },
  layer: {
    attnNorm: 'input_layernorm.weight',
    wqkv: { blocks: ['q_proj.weight', 'k_proj.weight', 'v_proj.weight'].map(attention) },
    bqkv: { blocks: ['q_proj.bias', 'k_proj.bias', 'v_proj.bias'].map(attention) },
    qNorm: attention('q_norm.weight'),
    kNorm: attention('k_norm.weight'),
    wo: attention('o_proj.weight'),
    bo: attention('o_proj.bias'),
    mlpNorm: 'post_attention_layernorm.weight',
    wGateUp: { blocks: ['mlp.gate_proj.weight', 'mlp.up_proj.weight'] },
    bGateUp: { blocks: ['mlp.gate_proj.bias', 'mlp.up_proj.bias'] },
    wDown: 'mlp.down_proj.weight',
    bDown: 'mlp.down_proj.bias',
  },
};

const LLAMA: Architecture = { arch: 'llama', className: 'LlamaForCausalLM', config: LLAMA_CONFIG, features: LLAMA_FEATURES, tensors: LLAMA_TENSORS };

const GPT2: Architecture = {
  arch: 'gpt2',
  className: 'GPT2LMHeadModel',
  config: {
    hiddenSize: 'n_embd',
    intermediateSize: 'n_inner',
    numLayers: 'n_layer',
    numHeads: 'n_head',
    numKvHeads: null,
    headDim: null,
    maxContext: 'n_positions',
    normEps: 'layer_norm_epsilon',
    activation: 'activation_function',
  },
  features: {
    norm: { kind: 'layer', defaultEps: 1e-5 },
    activation: { kind: 'gelu_tanh', names: ['gelu_new', 'gelu_pytorch_tanh'] },
    gatedMlp: false,
    defaultMlpRatio: 4,
    positions: 'learned',
    qkvBias: true,
    outputBias: true,
    mlpBias: true,
    qkNorm: false,
    // PretrainedConfig's default is true, and GPT-2 checkpoints rely on it.
    tiedEmbeddings: true,
    slidingWindow: 'none',
    noRopeLayers: false,
    partialRotary: false,
    scaleAttention: { field: 'scale_attn_weights', fallback: true },
    refuse: [
      { field: 'scale_attn_by_inverse_layer_idx', detail: 'per-layer attention scaling is not supported' },
      { field: 'add_cross_attention', detail: 'encoder-decoder GPT-2 is not supported' },
    ],
  },
  // GPT2LMHeadModel checkpoints may prefix every name but lm_head's with `transformer.`. Conv1D weights are
  // [in, out]; c_attn's output columns are q, k, v, so its transpose already is wqkv.
  tensors: {
    prefixes: ['', 'transformer.'],
    layerPrefix: 'h.',
    model: {
      embedding: 'wte.weight',
      positionEmbedding: 'wpe.weight',
      finalNorm: 'ln_f.weight',
      finalNormBias: 'ln_f.bias',
      lmHead: 'lm_head.weight',
    },
    layer: {
      attnNorm: 'ln_1.weight',
      attnNormBias: 'ln_1.bias',
      wqkv: { transposed: 'attn.c_attn.weight' },
      bqkv: 'attn.c_attn.bias',
      wo: { transposed: 'attn.c_proj.weight' },
      bo: 'attn.c_proj.bias',
      mlpNorm: 'ln_2.weight',
      mlpNormBias: 'ln_2.bias',
      wUp: { transposed: 'mlp.c_fc.weight' },
      bUp: 'mlp.c_fc.bias',
      wDown: { transposed: 'mlp.c_proj.weight' },
      bDown: 'mlp.c_proj.bias',
    },
  },
};

/** Gemma 3's text model (gemma3_text: the 270M and 1B repos). */
const GEMMA3: Architecture = {
  arch: 'gemma3',
  className: 'Gemma3ForCausalLM',
  config: { ...LLAMA_CONFIG, activation: 'hidden_activation' },
  // Gemma3TextConfig's defaults, besides those the runtime falls back to anyway.
  defaults: {
    vocab_size: 262208,
    hidden_size: 2304,
    intermediate_size: 9216,
    num_hidden_layers: 26,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    head_dim: 256,
    max_position_embeddings: 131072,
    rope_theta: 1000000,
    query_pre_attn_scalar: 256,
    sliding_window: 4096,
    bos_token_id: 2,
    eos_token_id: 1,
  },
  features: {
    ...LLAMA_FEATURES,
    activation: { kind: 'gelu_tanh', names: ['gelu_pytorch_tanh'] },
    mlpBias: false,
    qkNorm: true,
    tiedEmbeddings: true,
    slidingWindow: 'pattern',
    gemma: true,
    refuseSet: [
      { field: 'attn_logit_softcapping', detail: 'attention logit soft-capping is not supported' },
      { field: 'final_logit_softcapping', detail: 'final logit soft-capping is not supported' },
    ],
  },
  tensors: {
    ...LLAMA_TENSORS,
    layer: {
      ...LLAMA_TENSORS.layer,
      postAttnNorm: 'post_attention_layernorm.weight',
      mlpNorm: 'pre_feedforward_layernorm.weight',
      postMlpNorm: 'post_feedforward_layernorm.weight',
    },
  },
};

/**
 * Gemma 3's multimodal repos (4B and up, Gemma3ForConditionalGeneration): the text model under text_config and
 * `language_model.model.*` (`model.language_model.*` as transformers ≥ 4.52 saves it), next to a SigLIP vision
 * tower and its projector, which are not loaded: the model runs text-only.
 */
const GEMMA3_MULTIMODAL: Architecture = {
  ...GEMMA3,
  className: 'Gemma3ForConditionalGeneration',
  tensors: {
    ...GEMMA3.tensors,
    prefixes: ['language_model.model.', 'model.language_model.'],
    model: { ...GEMMA3.tensors.model, lmHead: 'language_model.lm_head.weight' },
  },
  textModel: {
    configField: 'text_config',
    modelType: 'gemma3_text',
    skipped: [
      {
        name: 'vision tower',
        configField: 'vision_config',
        tensorPrefixes: ['vision_tower.', 'multi_modal_projector.', 'model.vision_tower.', 'model.multi_modal_projector.'],
      },
    ],
  },
};

/** Supported model types, in the order messages list them. */
export const ARCHITECTURES = {
  llama: LLAMA,
  // Mistral is Llama's block; its sliding_window, when set, applies to every layer.
  mistral: { ...LLAMA, arch: 'mistral', className: 'MistralForCausalLM', features: { ...LLAMA_FEATURES, slidingWindow: 'all' } },
  // Qwen2 always has q/k/v biases and never an o bias.
  qwen2: {
    ...LLAMA,
    arch: 'qwen2',
    className: 'Qwen2ForCausalLM',
    features: { ...LLAMA_FEATURES, qkvBias: true, outputBias: false, mlpBias: false, slidingWindow: 'fromMaxWindowLayers' },
  },
  qwen3: {
    ...LLAMA,
    arch: 'qwen3',
    className: 'Qwen3ForCausalLM',
    features: { ...LLAMA_FEATURES, mlpBias: false, qkNorm: true, slidingWindow: 'fromMaxWindowLayers' },
  },
  // SmolLM3: Llama's block, tied, with every fourth layer (by default) attending without rope.
  smollm3: {
    ...LLAMA,
    arch: 'smollm3',
    className: 'SmolLM3ForCausalLM',
    features: { ...LLAMA_FEATURES, tiedEmbeddings: true, noRopeLayers: true, slidingWindow: 'noRopeLayers' },
  },
  gemma3_text: GEMMA3,
  gemma3: GEMMA3_MULTIMODAL,
  gpt2: GPT2,
  // Phi-3 and Phi-4: Llama's block with q/k/v and gate/up stored fused, no biases; sliding_window, when set,
  // applies to every layer; LongRoPE and partial rotary (Phi-4-mini) come with the rope config.
  phi3: {
    arch: 'phi3',
    className: 'Phi3ForCausalLM',
    config: LLAMA_CONFIG,
    features: {
      ...LLAMA_FEATURES,
      norm: { kind: 'rms', defaultEps: 1e-5 },
      qkvBias: false,
      outputBias: false,
      mlpBias: false,
      slidingWindow: 'all',
      partialRotary: true,
    },
    tensors: {
      ...LLAMA_TENSORS,
      layer: {
        attnNorm: 'input_layernorm.weight',
        wqkv: attention('qkv_proj.weight'),
        wo: attention('o_proj.weight'),
        mlpNorm: 'post_attention_layernorm.weight',
        wGateUp: 'mlp.gate_up_proj.weight',
        wDown: 'mlp.down_proj.weight',
      },
    },
  },
} satisfies Record<string, Architecture>;

export type ModelType = keyof typeof ARCHITECTURES;

export function isModelType(modelType: string): modelType is ModelType {
  // Own keys only: a model_type of "constructor" or "__proto__" must not find anything.
  return Object.hasOwn(ARCHITECTURES, modelType);
}

/** The model type whose table entry is `arch`'s own text model (gemma3 → gemma3_text, not the multimodal wrapper). */
export function modelTypeOf(arch: Arch): ModelType {
  const types = (Object.keys(ARCHITECTURES) as ModelType[]).filter((t) => {
    const a: Architecture = ARCHITECTURES[t];
    return a.arch === arch && a.textModel === undefined;
  });
  const found = types.find((t) => t === arch) ?? types[0];
  if (!found) throw new Error(`no model type for arch "${arch}"`);
  return found;
}

/** The table entry of a spec's model type. */
export function architectureOf(spec: ModelSpec): Architecture {
  if (!isModelType(spec.modelType)) throw new Error(`no architecture table entry for model type "${spec.modelType}"`);
  return ARCHITECTURES[spec.modelType];
}
