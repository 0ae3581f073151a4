/**
 * Random-weight checkpoints with the real structure of each architecture: a Hugging Face config.json
 * object and tensors under their Hugging Face names and layouts (GPT-2's Conv1D [in, out] and fused
 * c_attn included), both written from the architecture table, so they exercise the same loading path as
 * downloaded models. Seeded, so a failure replays.
 *
 * Scales keep activations O(1) rather than copying a training init: projections are N(0, 1/in) so each
 * preserves the size of its input, embeddings are N(0, 16/D) so tied logits have a spread of about 4
 * (distinct argmaxes, softmax neither flat nor one-hot), norm weights 1 ± 0.1, biases N(0, 0.1²).
 */
import { toF16 } from '../gpu/f16';
import { createRng, type Rng } from '../util/random';
import {
  ARCHITECTURES,
  INPUT_TENSOR_NAMES,
  LAYER_TENSOR_NAMES,
  LAYER_TENSORS,
  MODEL_TENSORS,
  OUTPUT_TENSOR_NAMES,
  modelTypeOf,
  type Arch,
  type Architecture,
  type CanonicalTensor,
  type ModelType,
  type ModelTensorName,
  type TensorMap,
  type TensorSource,
} from '../model/architectures';
import { parseModelConfig } from '../model/config';
import type { WeightDtype, WeightTensor } from '../model/weights';

export interface RandomModelOptions {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  /** Must equal numHeads for gpt2. */
  numKvHeads: number;
  /** Must be hiddenSize / numHeads for gpt2. */
  headDim: number;
  /** max_position_embeddings (n_positions for gpt2). */
  maxContext: number;
  tiedEmbeddings: boolean;
  /** rope_theta (not gpt2); default 10000. */
  ropeTheta?: number;
  /** rope_scaling exactly as written in config.json (not gpt2); default null. */
  ropeScaling?: Record<string, unknown> | null;
  /** partial_rotary_factor (phi3 only). */
  partialRotaryFactor?: number;
  /** original_max_position_embeddings (phi3's LongRoPE picks its factors by it). */
  originalMaxContext?: number;
  /** sliding_window, switched on (use_sliding_window) where the architecture asks for that. */
  slidingWindow?: number;
  /** Gemma 3: every this many layers one is global (default 6), the others slide. */
  slidingWindowPattern?: number;
  /** Gemma 3: rope_local_base_freq (default 10000). */
  ropeLocalTheta?: number;
  /** Gemma 3: query_pre_attn_scalar (default headDim). */
  queryPreAttnScalar?: number;
  /** no_rope_layers (smollm3): 1 for a rope layer, 0 for NoPE. */
  noRopeLayers?: number[];
  /** rms_norm_eps / layer_norm_epsilon; default 1e-5. */
  normEps?: number;
  bosTokenId?: number;
  eosTokenId?: number | number[];
  /** Dtype of every tensor, norms included, as in a real checkpoint; default f32. */
  dtype?: WeightDtype;
  /**
   * Write the layout of the arch's multimodal wrapper (gemma3: Gemma3ForConditionalGeneration) instead of its
   * text model's: the config nested under text_config and tensors under the wrapper's prefix, next to small
   * random stand-ins for the parts the runtime skips (the vision tower and its projector).
   */
  multimodal?: boolean;
}

export interface RandomModel {
  /** The config.json object. */
  config: Record<string, unknown>;
  /** Tensors by Hugging Face name, in checkpoint order. */
  tensors: Map<string, WeightTensor>;
}

/** Small shapes for tests: odd sizes (vocab, intermediate) so kernels hit their tails, GQA where it exists. */
export const SMALL_MODELS: Record<Arch, RandomModelOptions> = {
  // Untied, with llama3 rope scaling whose original context (32) puts head 16's frequencies in all three
  // regimes (kept, blended, interpolated).
  llama: {
    vocabSize: 301,
    hiddenSize: 64,
    intermediateSize: 172,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    maxContext: 128,
    tiedEmbeddings: false,
    ropeTheta: 10000,
    ropeScaling: {
      rope_type: 'llama3',
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 32,
    },
    bosTokenId: 1,
    eosTokenId: 2,
  },
  qwen2: {
    vocabSize: 311,
    hiddenSize: 96,
    intermediateSize: 200,
    numLayers: 2,
    numHeads: 6,
    numKvHeads: 2,
    headDim: 16,
    maxContext: 128,
    tiedEmbeddings: true,
    ropeTheta: 1000000,
    normEps: 1e-6,
    eosTokenId: [2, 3],
  },
  // head_dim 32 with 4 heads: nH·hd (128) ≠ hidden (64), as in real Qwen3 models.
  qwen3: {
    vocabSize: 300,
    hiddenSize: 64,
    intermediateSize: 150,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 32,
    maxContext: 128,
    tiedEmbeddings: false,
    ropeTheta: 1000000,
    normEps: 1e-6,
    eosTokenId: 2,
  },
  // n_inner 200 instead of 4·n_embd, to exercise the explicit field and an odd MLP width.
  gpt2: {
    vocabSize: 307,
    hiddenSize: 64,
    intermediateSize: 200,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 4,
    headDim: 16,
    maxContext: 64,
    tiedEmbeddings: true,
    bosTokenId: 0,
    eosTokenId: 0,
  },
  // Mistral-7B-v0.1's shape shrunk: a sliding window of 8, so prompts and decode cross it.
  mistral: {
    vocabSize: 297,
    hiddenSize: 64,
    intermediateSize: 140,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 1,
    headDim: 16,
    maxContext: 128,
    tiedEmbeddings: false,
    slidingWindow: 8,
    bosTokenId: 1,
    eosTokenId: 2,
  },
  // Phi-4-mini's shape shrunk: GQA, untied, 3/4 of each head rotated, LongRoPE whose pre-trained context (16)
  // is inside the tests' prompts, so both factor sets and the attention factor are used.
  phi3: {
    vocabSize: 293,
    hiddenSize: 64,
    intermediateSize: 136,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    maxContext: 128,
    tiedEmbeddings: false,
    ropeTheta: 10000,
    partialRotaryFactor: 0.75,
    originalMaxContext: 16,
    ropeScaling: { type: 'longrope', short_factor: [1, 1.1, 1.5, 2, 3, 5], long_factor: [1, 2, 4, 8, 16, 32] },
    bosTokenId: 1,
    eosTokenId: 2,
  },
  // Gemma-3-1B's shape shrunk: one KV head, head_dim 32 with nH·hd ≠ hidden, a sliding window of 8 on two of
  // every three layers (local rope base 10000) and a global layer with linearly scaled rope (θ 10⁶);
  // query_pre_attn_scalar ≠ head_dim, as in Gemma-3-27B.
  gemma3: {
    vocabSize: 263,
    hiddenSize: 48,
    intermediateSize: 100,
    numLayers: 3,
    numHeads: 2,
    numKvHeads: 1,
    headDim: 32,
    maxContext: 128,
    tiedEmbeddings: true,
    ropeTheta: 1000000,
    ropeScaling: { rope_type: 'linear', factor: 8 },
    slidingWindow: 8,
    slidingWindowPattern: 3,
    ropeLocalTheta: 10000,
    queryPreAttnScalar: 24,
    normEps: 1e-6,
    bosTokenId: 2,
    eosTokenId: [1, 106],
  },
  // SmolLM3-3B's shape shrunk: tied, the middle layer NoPE.
  smollm3: {
    vocabSize: 305,
    hiddenSize: 64,
    intermediateSize: 150,
    numLayers: 3,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    maxContext: 128,
    tiedEmbeddings: true,
    ropeTheta: 2000000,
    noRopeLayers: [1, 0, 1],
    normEps: 1e-6,
    bosTokenId: 1,
    eosTokenId: 2,
  },
};

export type BenchmarkModelName = 'SmolLM2-135M' | 'Qwen2.5-0.5B' | 'TinyLlama-1.1B' | 'Llama-3.2-1B';

/** Real configurations (random weights) for benchmarks. Generating Llama-3.2-1B takes tens of seconds. */
export const BENCHMARK_MODELS: Record<BenchmarkModelName, { arch: Arch; options: RandomModelOptions }> = {
  'SmolLM2-135M': {
    arch: 'llama',
    options: {
      vocabSize: 49152,
      hiddenSize: 576,
      intermediateSize: 1536,
      numLayers: 30,
      numHeads: 9,
      numKvHeads: 3,
      headDim: 64,
      maxContext: 8192,
      tiedEmbeddings: true,
      ropeTheta: 100000,
      bosTokenId: 0,
      eosTokenId: 0,
    },
  },
  'Qwen2.5-0.5B': {
    arch: 'qwen2',
    options: {
      vocabSize: 151936,
      hiddenSize: 896,
      intermediateSize: 4864,
      numLayers: 24,
      numHeads: 14,
      numKvHeads: 2,
      headDim: 64,
      maxContext: 32768,
      tiedEmbeddings: true,
      ropeTheta: 1000000,
      normEps: 1e-6,
      bosTokenId: 151643,
      eosTokenId: 151643,
    },
  },
  'TinyLlama-1.1B': {
    arch: 'llama',
    options: {
      vocabSize: 32000,
      hiddenSize: 2048,
      intermediateSize: 5632,
      numLayers: 22,
      numHeads: 32,
      numKvHeads: 4,
      headDim: 64,
      // The real model's is 2048; longer so that decode can be measured at position 2048.
      maxContext: 4096,
      tiedEmbeddings: false,
      ropeTheta: 10000,
      bosTokenId: 1,
      eosTokenId: 2,
    },
  },
  'Llama-3.2-1B': {
    arch: 'llama',
    options: {
      vocabSize: 128256,
      hiddenSize: 2048,
      intermediateSize: 8192,
      numLayers: 16,
      numHeads: 32,
      numKvHeads: 8,
      headDim: 64,
      maxContext: 131072,
      tiedEmbeddings: true,
      ropeTheta: 500000,
      ropeScaling: {
        rope_type: 'llama3',
        factor: 32,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 8192,
      },
      bosTokenId: 128000,
      eosTokenId: 128001,
    },
  },
};

/** The model type of the layout `o` asks for: the arch's text model, or its multimodal wrapper. */
function layoutOf(arch: Arch, o: RandomModelOptions): ModelType {
  if (!o.multimodal) return modelTypeOf(arch);
  const types = Object.keys(ARCHITECTURES) as ModelType[];
  const wrapper = types.find((t) => {
    const a: Architecture = ARCHITECTURES[t];
    return a.arch === arch && a.textModel !== undefined;
  });
  if (wrapper === undefined) throw new RangeError(`${arch} has no multimodal layout`);
  return wrapper;
}

export function randomModel(arch: Arch, options: RandomModelOptions, seed: number): RandomModel {
  const o = options;
  const config = randomModelConfig(arch, o);
  const spec = parseModelConfig(config);
  if (spec.numKvHeads !== o.numKvHeads || spec.headDim !== o.headDim) {
    throw new RangeError(`${arch} derives numKvHeads ${spec.numKvHeads} and headDim ${spec.headDim} from the other sizes`);
  }
  const gen = new Generator(createRng(seed), o.dtype ?? 'f32');
  const tensors = new Map<string, WeightTensor>();
  const layout: Architecture = ARCHITECTURES[layoutOf(arch, o)];
  const map: TensorMap = layout.tensors;
  const embedStd = 4 / Math.sqrt(o.hiddenSize);
  /** Draws canonical tensor `t` as the checkpoint stores it (its blocks, or its transpose) under `named` names. */
  const draw = (t: CanonicalTensor, source: TensorSource | undefined, named: (name: string) => string, modelLevel: boolean) => {
    if (!t.present(spec)) return;
    if (source === undefined) throw new Error(`the ${arch} tensor map has no source for a ${t.label}`);
    const rows = t.rows(spec);
    const cols = t.cols?.(spec);
    const values = (shape: number[]) => {
      if (t.kind === 'norm') return gen.norm(shape[0]);
      if (t.kind === 'bias') return gen.bias(shape[0]);
      // Embeddings (and an untied head) N(0, 16/D); projections N(0, 1/in) so each preserves the size of its input.
      return gen.normal(shape, modelLevel ? embedStd : 1 / Math.sqrt(cols ?? 1));
    };
    const total = rows.reduce((a, b) => a + b, 0);
    if (typeof source === 'string') tensors.set(named(source), values(cols ? [total, cols] : [total]));
    else if ('transposed' in source) tensors.set(named(source.transposed), values(cols ? [cols, total] : [total]));
    else source.blocks.forEach((name, i) => tensors.set(named(name), values(cols ? [rows[i], cols] : [rows[i]])));
  };
  const model = (name: ModelTensorName) =>
    draw(MODEL_TENSORS[name], map.model[name], (n) => (name === 'lmHead' ? n : map.prefixes[0] + n), true);

  for (const name of INPUT_TENSOR_NAMES) model(name);
  for (let l = 0; l < spec.numLayers; l++) {
    for (const name of LAYER_TENSOR_NAMES) draw(LAYER_TENSORS[name], map.layer[name], (n) => `${map.prefixes[0]}${map.layerPrefix}${l}.${n}`, false);
  }
  for (const name of OUTPUT_TENSOR_NAMES) model(name);
  // Stand-ins under the first two prefixes of each skipped part (the tower and its projector, as the original
  // checkpoints name them): a loader that read them would find tensors no canonical one matches.
  for (const part of layout.textModel?.skipped ?? []) {
    for (const prefix of part.tensorPrefixes.slice(0, 2)) tensors.set(`${prefix}stand_in.weight`, gen.normal([5, o.hiddenSize], 1));
  }
  return { config, tensors };
}

/** The config.json object of `randomModel(arch, o, seed)`, without generating any weights, under the names the table gives. */
export function randomModelConfig(arch: Arch, o: RandomModelOptions): Record<string, unknown> {
  const text = textModelConfig(arch, o);
  const wrapper: Architecture = ARCHITECTURES[layoutOf(arch, o)];
  if (!wrapper.textModel) return text;
  // As Gemma3Config writes it: the token ids and dtype at the top, next to the text and vision configs.
  const { bos_token_id, eos_token_id, torch_dtype, ...textFields } = text;
  const config: Record<string, unknown> = {
    architectures: [wrapper.className],
    model_type: layoutOf(arch, o),
    [wrapper.textModel.configField]: textFields,
    bos_token_id,
    eos_token_id,
    torch_dtype,
  };
  for (const part of wrapper.textModel.skipped) config[part.configField] = { hidden_size: o.hiddenSize, num_hidden_layers: 1 };
  return config;
}

function textModelConfig(arch: Arch, o: RandomModelOptions): Record<string, unknown> {
  const { className, config: names, features } = ARCHITECTURES[modelTypeOf(arch)];
  const config: Record<string, unknown> = {
    architectures: [className],
    model_type: modelTypeOf(arch),
    [names.hiddenSize]: o.hiddenSize,
    [names.intermediateSize]: o.intermediateSize,
    [names.numLayers]: o.numLayers,
    [names.numHeads]: o.numHeads,
    [names.maxContext]: o.maxContext,
    [names.activation]: features.activation.names[0],
    [names.normEps]: o.normEps ?? 1e-5,
  };
  if (names.numKvHeads !== null) config[names.numKvHeads] = o.numKvHeads;
  if (names.headDim !== null) config[names.headDim] = o.headDim;
  if (features.positions === 'rope') {
    config.rope_theta = o.ropeTheta ?? 10000;
    config.rope_scaling = o.ropeScaling ?? null;
  }
  // Flags a config may set are written with their defaults, as transformers writes every field.
  for (const flag of [features.qkvBias, features.outputBias, features.mlpBias, features.scaleAttention]) {
    if (typeof flag !== 'boolean') config[flag.field] = flag.fallback;
  }
  if (features.slidingWindow !== 'none') {
    config.sliding_window = o.slidingWindow ?? null;
    if (features.slidingWindow === 'fromMaxWindowLayers' || features.slidingWindow === 'noRopeLayers') {
      config.use_sliding_window = o.slidingWindow !== undefined;
    }
  }
  if (features.gemma) {
    config.sliding_window_pattern = o.slidingWindowPattern ?? 6;
    config.rope_local_base_freq = o.ropeLocalTheta ?? 10000;
    config.query_pre_attn_scalar = o.queryPreAttnScalar ?? o.headDim;
  }
  if (o.partialRotaryFactor !== undefined) config.partial_rotary_factor = o.partialRotaryFactor;
  if (o.originalMaxContext !== undefined) config.original_max_position_embeddings = o.originalMaxContext;
  if (o.noRopeLayers !== undefined) config.no_rope_layers = o.noRopeLayers;
  return {
    ...config,
    vocab_size: o.vocabSize,
    tie_word_embeddings: o.tiedEmbeddings,
    bos_token_id: o.bosTokenId ?? null,
    eos_token_id: o.eosTokenId ?? null,
    torch_dtype: o.dtype === 'f16' ? 'float16' : 'float32',
  };
}

/** Draws tensors in the requested dtype from one seeded stream. */
export class Generator {
  constructor(
    private readonly rng: Rng,
    private readonly dtype: WeightDtype,
  ) {}

  /**
   * Approximately N(mean, std²): the sum of the four bytes of one 32-bit draw (Irwin–Hall, tails cut at
   * ±3.5 std). Benchmark models have 10⁹ values, and Box–Muller's log/cos would be three times slower.
   */
  normal(shape: number[], std: number, mean = 0): WeightTensor {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    // A uniform byte has variance (256² − 1) / 12; four of them sum to mean 510.
    const scale = std / Math.sqrt((4 * (256 * 256 - 1)) / 12);
    for (let i = 0; i < n; i++) {
      const bits = Math.floor(this.rng.next() * 2 ** 32);
      const sum = (bits & 255) + ((bits >>> 8) & 255) + ((bits >>> 16) & 255) + (bits >>> 24);
      values[i] = mean + (sum - 510) * scale;
    }
    return this.dtype === 'f16' ? { dtype: 'f16', shape, data: toF16(values) } : { dtype: 'f32', shape, data: values };
  }

  norm(n: number): WeightTensor {
    return this.normal([n], 0.1, 1);
  }

  bias(n: number): WeightTensor {
    return this.normal([n], 0.1);
  }
}
