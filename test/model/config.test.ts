import { describe, expect, it } from 'vitest';
import { ModelConfigError, parseModelConfig, UnsupportedModelError, type ModelSpec } from '../../src/model/config';
import { BENCHMARK_MODELS, randomModelConfig, SMALL_MODELS } from '../../src/dev/random-model';
import { readModelText } from '../models';

function readModelJson(model: string, file: string): unknown {
  return JSON.parse(readModelText(model, file));
}

/** The error `fn` throws, checked to be an instance of `type`. */
function thrown<E extends Error>(fn: () => unknown, type: new (...args: never[]) => E): E {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(type);
    return e as E;
  }
  throw new Error('expected an error, none was thrown');
}

const smolLM2 = randomModelConfig('llama', BENCHMARK_MODELS['SmolLM2-135M'].options);

describe('parseModelConfig', () => {
  it('parses the real stories260K config.json', () => {
    const spec = parseModelConfig(readModelJson('stories260K', 'config.json'));
    expect(spec).toEqual<ModelSpec>({
      arch: 'llama',
      modelType: 'llama',
      vocabSize: 512,
      hiddenSize: 64,
      intermediateSize: 172,
      numLayers: 5,
      numHeads: 8,
      numKvHeads: 4,
      headDim: 8,
      maxContext: 512,
      norm: { kind: 'rms', eps: 1e-5 },
      activation: 'silu',
      gatedMlp: true,
      rope: { theta: 10000, rotaryDim: 8, scaling: null },
      qkvBias: false,
      outputBias: false,
      mlpBias: false,
      qkNorm: false,
      tiedEmbeddings: true,
      learnedPositions: false,
      layerAttention: Array.from({ length: 5 }, () => ({ window: 0, rope: true })),
      embeddingScale: 1,
      normPlusOne: false,
      sandwichNorms: false,
      localRope: null,
      attentionScale: 1 / Math.sqrt(8),
      bosTokenId: 1,
      eosTokenIds: [2],
      skippedParts: [],
    });
  });

  it('parses the small random presets of every architecture', () => {
    for (const [arch, o] of Object.entries(SMALL_MODELS)) {
      const spec = parseModelConfig(randomModelConfig(arch as ModelSpec['arch'], o));
      expect(spec).toMatchObject({
        arch,
        vocabSize: o.vocabSize,
        hiddenSize: o.hiddenSize,
        intermediateSize: o.intermediateSize,
        numLayers: o.numLayers,
        numHeads: o.numHeads,
        numKvHeads: o.numKvHeads,
        headDim: o.headDim,
        maxContext: o.maxContext,
        tiedEmbeddings: o.tiedEmbeddings,
        attentionScale: 1 / Math.sqrt(o.queryPreAttnScalar ?? o.headDim),
      });
    }
  });

  it('reads llama3 rope scaling (Llama-3.2-1B) and explicit head_dim', () => {
    const spec = parseModelConfig(randomModelConfig('llama', BENCHMARK_MODELS['Llama-3.2-1B'].options));
    expect(spec.headDim).toBe(64);
    expect(spec.rope).toEqual({
      theta: 500000,
      rotaryDim: 64,
      scaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
    });
    expect(spec.eosTokenIds).toEqual([128001]);
  });

  it('reads linear rope scaling under the old "type" key and transformers 5 rope_parameters', () => {
    const linear = parseModelConfig({ ...smolLM2, rope_scaling: { type: 'linear', factor: 4 } });
    expect(linear.rope?.scaling).toEqual({ type: 'linear', factor: 4 });
    const { rope_theta: _theta, rope_scaling: _scaling, ...rest } = smolLM2;
    const v5 = parseModelConfig({ ...rest, rope_parameters: { rope_type: 'default', rope_theta: 123 } });
    expect(v5.rope).toEqual({ theta: 123, rotaryDim: 64, scaling: null });
    expect(parseModelConfig({ ...smolLM2, rope_scaling: { rope_type: 'default' } }).rope?.scaling).toBeNull();
    const yarnConfig = { ...smolLM2, rope_scaling: { rope_type: 'yarn', factor: 4 } };
    const yarn = thrown(() => parseModelConfig(yarnConfig), ModelConfigError);
    expect(yarn.field).toBe('rope_scaling');
    expect(yarn.message).toContain('yarn');
  });

  it('qwen2 (Qwen2.5-0.5B): q/k/v biases, no output bias, tied', () => {
    const spec = parseModelConfig(randomModelConfig('qwen2', BENCHMARK_MODELS['Qwen2.5-0.5B'].options));
    expect(spec).toMatchObject({ arch: 'qwen2', qkvBias: true, outputBias: false, mlpBias: false, qkNorm: false });
    expect(spec).toMatchObject({ tiedEmbeddings: true, numHeads: 14, numKvHeads: 2, headDim: 64 });
    expect(spec.norm).toEqual({ kind: 'rms', eps: 1e-6 });
  });

  it('qwen3 (Qwen3-0.6B config): qk-norm, head_dim from config', () => {
    const spec = parseModelConfig({
      architectures: ['Qwen3ForCausalLM'],
      model_type: 'qwen3',
      attention_bias: false,
      head_dim: 128,
      hidden_act: 'silu',
      hidden_size: 1024,
      intermediate_size: 3072,
      max_position_embeddings: 40960,
      max_window_layers: 28,
      num_attention_heads: 16,
      num_hidden_layers: 28,
      num_key_value_heads: 8,
      rms_norm_eps: 1e-6,
      rope_scaling: null,
      rope_theta: 1000000,
      sliding_window: null,
      tie_word_embeddings: true,
      use_sliding_window: false,
      vocab_size: 151936,
      bos_token_id: 151643,
      eos_token_id: 151645,
    });
    expect(spec).toMatchObject({ arch: 'qwen3', qkNorm: true, qkvBias: false, outputBias: false });
    expect(spec).toMatchObject({ headDim: 128, numHeads: 16, numKvHeads: 8, hiddenSize: 1024 });
    expect(spec.attentionScale).toBeCloseTo(1 / Math.sqrt(128), 15);
  });

  it('gpt2 (the real openai-community/gpt2 config.json): defaults, LayerNorm, gelu_new, learned positions', () => {
    const spec = parseModelConfig({
      activation_function: 'gelu_new',
      architectures: ['GPT2LMHeadModel'],
      attn_pdrop: 0.1,
      bos_token_id: 50256,
      embd_pdrop: 0.1,
      eos_token_id: 50256,
      initializer_range: 0.02,
      layer_norm_epsilon: 1e-5,
      model_type: 'gpt2',
      n_ctx: 1024,
      n_embd: 768,
      n_head: 12,
      n_layer: 12,
      n_positions: 1024,
      resid_pdrop: 0.1,
      summary_activation: null,
      task_specific_params: { 'text-generation': { do_sample: true, max_length: 50 } },
      vocab_size: 50257,
    });
    expect(spec).toEqual<ModelSpec>({
      arch: 'gpt2',
      modelType: 'gpt2',
      vocabSize: 50257,
      hiddenSize: 768,
      intermediateSize: 3072,
      numLayers: 12,
      numHeads: 12,
      numKvHeads: 12,
      headDim: 64,
      maxContext: 1024,
      norm: { kind: 'layer', eps: 1e-5 },
      activation: 'gelu_tanh',
      gatedMlp: false,
      rope: null,
      qkvBias: true,
      outputBias: true,
      mlpBias: true,
      qkNorm: false,
      tiedEmbeddings: true,
      learnedPositions: true,
      layerAttention: Array.from({ length: 12 }, () => ({ window: 0, rope: false })),
      embeddingScale: 1,
      normPlusOne: false,
      sandwichNorms: false,
      localRope: null,
      attentionScale: 1 / 8,
      bosTokenId: 50256,
      eosTokenIds: [50256],
      skippedParts: [],
    });
    const tiny = { model_type: 'gpt2', n_embd: 64, n_head: 4, n_layer: 1, n_positions: 8, vocab_size: 9 };
    const exactGelu = { ...tiny, activation_function: 'gelu' };
    const gelu = thrown(() => parseModelConfig(exactGelu), ModelConfigError);
    expect(gelu.field).toBe('activation_function');
  });

  it('mistral: sliding_window, when set, limits every layer; Qwen2/3 slide from max_window_layers with use_sliding_window', () => {
    const mistral = {
      ...smolLM2,
      architectures: ['MistralForCausalLM'],
      model_type: 'mistral',
      num_hidden_layers: 3,
      max_position_embeddings: 32768,
    };
    const windows = (config: object) => parseModelConfig(config).layerAttention.map((l) => l.window);
    expect(parseModelConfig({ ...mistral, sliding_window: null })).toMatchObject({ arch: 'mistral', modelType: 'mistral' });
    expect(windows({ ...mistral, sliding_window: null })).toEqual([0, 0, 0]);
    expect(windows({ ...mistral, sliding_window: 4096 })).toEqual([4096, 4096, 4096]);
    expect(thrown(() => parseModelConfig({ ...mistral, sliding_window: 0 }), ModelConfigError).field).toBe('sliding_window');
    // Qwen2 only slides when use_sliding_window says so, and then from layer max_window_layers on (default 28).
    const qwen = { ...randomModelConfig('qwen2', SMALL_MODELS.qwen2), num_hidden_layers: 3 };
    expect(windows({ ...qwen, sliding_window: 16 })).toEqual([0, 0, 0]);
    expect(windows({ ...qwen, use_sliding_window: true, sliding_window: 16 })).toEqual([0, 0, 0]);
    expect(windows({ ...qwen, use_sliding_window: true, sliding_window: 16, max_window_layers: 1 })).toEqual([0, 16, 16]);
    // layer_types, where given, says which layers slide.
    const typed = { ...qwen, use_sliding_window: true, sliding_window: 16, layer_types: ['sliding_attention', 'full_attention', 'sliding_attention'] };
    expect(windows(typed)).toEqual([16, 0, 16]);
    const chunked = { ...typed, layer_types: ['chunked_attention', 'full_attention', 'full_attention'] };
    expect(thrown(() => parseModelConfig(chunked), ModelConfigError).field).toBe('layer_types[0]');
    expect(thrown(() => parseModelConfig({ ...typed, layer_types: ['full_attention'] }), ModelConfigError).field).toBe('layer_types');
    // Llama has no sliding window: the fields are not read.
    expect(windows({ ...smolLM2, use_sliding_window: true, sliding_window: 16 }).every((w) => w === 0)).toBe(true);
  });

  it('smollm3: every no_rope_layer_interval-th layer is NoPE, or as no_rope_layers lists; use_sliding_window slides the NoPE layers', () => {
    const smollm3 = { ...randomModelConfig('smollm3', SMALL_MODELS.smollm3), num_hidden_layers: 8, no_rope_layers: null };
    const ropes = (config: object) => parseModelConfig(config).layerAttention.map((l) => l.rope);
    expect(ropes(smollm3)).toEqual([true, true, true, false, true, true, true, false]);
    expect(ropes({ ...smollm3, no_rope_layer_interval: 2 })).toEqual([true, false, true, false, true, false, true, false]);
    expect(ropes({ ...smollm3, no_rope_layers: [0, 1, 1, 1, 1, 1, 1, 1, 1] })).toEqual([false, true, true, true, true, true, true, true]);
    expect(thrown(() => parseModelConfig({ ...smollm3, no_rope_layers: [1, 1] }), ModelConfigError).field).toBe('no_rope_layers');
    expect(thrown(() => parseModelConfig({ ...smollm3, no_rope_layers: [2, 1, 1, 1, 1, 1, 1, 1] }), ModelConfigError).field).toBe('no_rope_layers');
    const windows = parseModelConfig({ ...smollm3, use_sliding_window: true, sliding_window: 64 }).layerAttention.map((l) => l.window);
    expect(windows).toEqual([0, 0, 0, 64, 0, 0, 0, 64]);
    expect(parseModelConfig(smollm3)).toMatchObject({ arch: 'smollm3', tiedEmbeddings: true });
  });

  it('phi3 (the real Phi-4, Phi-4-mini and Phi-3-mini-4k configs): the Llama block, sliding window, partial rotary and LongRoPE', () => {
    const phi4 = {
      architectures: ['Phi3ForCausalLM'],
      attention_dropout: 0.0,
      bos_token_id: 100257,
      embd_pdrop: 0.0,
      eos_token_id: 100265,
      hidden_act: 'silu',
      hidden_size: 5120,
      initializer_range: 0.02,
      intermediate_size: 17920,
      max_position_embeddings: 16384,
      model_type: 'phi3',
      num_attention_heads: 40,
      num_hidden_layers: 40,
      num_key_value_heads: 10,
      original_max_position_embeddings: 16384,
      pad_token_id: 100349,
      resid_pdrop: 0.0,
      rms_norm_eps: 1e-5,
      rope_scaling: null,
      rope_theta: 250000,
      sliding_window: null,
      tie_word_embeddings: false,
      vocab_size: 100352,
    };
    const spec = parseModelConfig(phi4);
    expect(spec).toMatchObject({ arch: 'phi3', modelType: 'phi3', qkvBias: false, outputBias: false, mlpBias: false, qkNorm: false });
    expect(spec).toMatchObject({ headDim: 128, numHeads: 40, numKvHeads: 10, gatedMlp: true, tiedEmbeddings: false });
    expect(spec.norm).toEqual({ kind: 'rms', eps: 1e-5 });
    expect(spec.rope).toEqual({ theta: 250000, rotaryDim: 128, scaling: null });
    // Phi-3-mini-4k-instruct slides a 2047-token window over a 4096-token context.
    const mini = { ...phi4, hidden_size: 3072, num_attention_heads: 32, num_key_value_heads: 32, max_position_embeddings: 4096, sliding_window: 2047 };
    expect(parseModelConfig(mini).layerAttention.every((l) => l.window === 2047 && l.rope)).toBe(true);
    // Phi-4-mini-instruct: 3/4 of each 128-dim head rotated, LongRoPE over 48 frequencies from 4096 to 131072 positions.
    const short = Array.from({ length: 48 }, (_, i) => 1 + i / 100);
    const long = Array.from({ length: 48 }, (_, i) => 1 + i);
    const phi4mini = {
      ...phi4,
      hidden_size: 3072,
      intermediate_size: 8192,
      num_attention_heads: 24,
      num_key_value_heads: 8,
      num_hidden_layers: 32,
      max_position_embeddings: 131072,
      original_max_position_embeddings: 4096,
      partial_rotary_factor: 0.75,
      rope_theta: 10000,
      rope_scaling: { type: 'longrope', short_factor: short, long_factor: long },
      sliding_window: 262144,
      tie_word_embeddings: true,
      vocab_size: 200064,
    };
    const miniSpec = parseModelConfig(phi4mini);
    expect(miniSpec.rope).toEqual({
      theta: 10000,
      rotaryDim: 96,
      scaling: { type: 'longrope', shortFactor: short, longFactor: long, originalMaxPositionEmbeddings: 4096, attentionFactor: Math.sqrt(1 + Math.log(32) / Math.log(4096)) },
    });
    expect(miniSpec.tiedEmbeddings).toBe(true);
    const explicitFactor = { ...phi4mini, rope_scaling: { ...phi4mini.rope_scaling, attention_factor: 1.25 } };
    expect(parseModelConfig(explicitFactor).rope?.scaling).toMatchObject({ attentionFactor: 1.25 });
    const wrongLength = { ...phi4mini, rope_scaling: { type: 'longrope', short_factor: [1], long_factor: long } };
    expect(thrown(() => parseModelConfig(wrongLength), ModelConfigError).field).toBe('rope_scaling.short_factor');
    const yarn = { ...phi4, rope_scaling: { type: 'yarn', factor: 4 } };
    expect(thrown(() => parseModelConfig(yarn), ModelConfigError).field).toBe('rope_scaling');
    // Only Phi-3 reads partial_rotary_factor.
    expect(thrown(() => parseModelConfig({ ...smolLM2, partial_rotary_factor: 0.5 }), ModelConfigError).field).toBe('partial_rotary_factor');
  });

  it('gemma3_text (the real Gemma-3-1B config): 1+w norms, post-norms, √hidden in bf16, query_pre_attn_scalar, 5 local layers to 1 global', () => {
    const gemma1b = {
      architectures: ['Gemma3ForCausalLM'],
      attention_bias: false,
      attn_logit_softcapping: null,
      bos_token_id: 2,
      eos_token_id: [1, 106],
      final_logit_softcapping: null,
      head_dim: 256,
      hidden_activation: 'gelu_pytorch_tanh',
      hidden_size: 1152,
      intermediate_size: 6912,
      max_position_embeddings: 32768,
      model_type: 'gemma3_text',
      num_attention_heads: 4,
      num_hidden_layers: 26,
      num_key_value_heads: 1,
      pad_token_id: 0,
      query_pre_attn_scalar: 256,
      rms_norm_eps: 1e-6,
      rope_local_base_freq: 10000,
      rope_scaling: null,
      rope_theta: 1000000,
      sliding_window: 512,
      sliding_window_pattern: 6,
      torch_dtype: 'bfloat16',
      vocab_size: 262144,
    };
    const spec = parseModelConfig(gemma1b);
    expect(spec).toMatchObject({ arch: 'gemma3', activation: 'gelu_tanh', gatedMlp: true, qkNorm: true, tiedEmbeddings: true, normPlusOne: true, sandwichNorms: true });
    // √1152 = 33.94 is 34 in bf16, as Gemma3TextScaledWordEmbedding casts it to the weights' dtype.
    expect(spec.embeddingScale).toBe(34);
    expect(spec.attentionScale).toBe(1 / 16);
    expect(spec.rope).toEqual({ theta: 1000000, rotaryDim: 256, scaling: null });
    expect(spec.localRope).toEqual({ theta: 10000, rotaryDim: 256, scaling: null });
    const global = spec.layerAttention.flatMap((l, i) => (l.window === 0 ? [i] : []));
    expect(global).toEqual([5, 11, 17, 23]);
    expect(spec.layerAttention.every((l) => (l.window === 512) === (l.local === true))).toBe(true);
    const typed = { ...gemma1b, num_hidden_layers: 3, layer_types: ['sliding_attention', 'full_attention', 'sliding_attention'] };
    expect(parseModelConfig(typed).layerAttention.map((l) => l.window)).toEqual([512, 0, 512]);
    for (const field of ['attn_logit_softcapping', 'final_logit_softcapping']) {
      expect(thrown(() => parseModelConfig({ ...gemma1b, [field]: 30 }), ModelConfigError).field).toBe(field);
    }
  });

  it('gemma3 (the real Gemma-3-4B-it config): the text model from text_config with Gemma3TextConfig defaults, the vision tower skipped by name', () => {
    const gemma4b = {
      architectures: ['Gemma3ForConditionalGeneration'],
      boi_token_index: 255999,
      eoi_token_index: 256000,
      eos_token_id: [1, 106],
      image_token_index: 262144,
      initializer_range: 0.02,
      mm_tokens_per_image: 256,
      model_type: 'gemma3',
      text_config: {
        hidden_size: 2560,
        intermediate_size: 10240,
        model_type: 'gemma3_text',
        num_hidden_layers: 34,
        rope_scaling: { factor: 8.0, rope_type: 'linear' },
        sliding_window: 1024,
      },
      torch_dtype: 'bfloat16',
      transformers_version: '4.50.0.dev0',
      vision_config: {
        hidden_size: 1152,
        image_size: 896,
        intermediate_size: 4304,
        model_type: 'siglip_vision_model',
        num_attention_heads: 16,
        num_hidden_layers: 27,
        patch_size: 14,
        vision_use_head: false,
      },
    };
    const spec = parseModelConfig(gemma4b);
    expect(spec).toMatchObject({
      arch: 'gemma3',
      modelType: 'gemma3',
      // Left out of text_config: Gemma3TextConfig's defaults.
      vocabSize: 262208,
      numHeads: 8,
      numKvHeads: 4,
      headDim: 256,
      maxContext: 131072,
      hiddenSize: 2560,
      intermediateSize: 10240,
      numLayers: 34,
      norm: { kind: 'rms', eps: 1e-6 },
      tiedEmbeddings: true,
      normPlusOne: true,
      bosTokenId: 2,
      eosTokenIds: [1, 106],
    });
    // √2560 = 50.6 is 50.5 in bf16: the dtype is the wrapper's.
    expect(spec.embeddingScale).toBe(50.5);
    expect(spec.attentionScale).toBe(1 / 16);
    expect(spec.rope).toEqual({ theta: 1000000, rotaryDim: 256, scaling: { type: 'linear', factor: 8 } });
    expect(spec.localRope).toEqual({ theta: 10000, rotaryDim: 256, scaling: null });
    expect(spec.layerAttention.flatMap((l, i) => (l.window === 0 ? [i] : []))).toEqual([5, 11, 17, 23, 29]);
    expect(spec.layerAttention[0].window).toBe(1024);
    expect(spec.skippedParts.map((p) => [p.name, p.configField])).toEqual([['vision tower', 'vision_config']]);

    // Errors name the field under its path.
    const softcapped = { ...gemma4b, text_config: { ...gemma4b.text_config, attn_logit_softcapping: 50 } };
    expect(thrown(() => parseModelConfig(softcapped), ModelConfigError).field).toBe('text_config.attn_logit_softcapping');
    const wrongText = { ...gemma4b, text_config: { ...gemma4b.text_config, model_type: 'llama' } };
    expect(thrown(() => parseModelConfig(wrongText), ModelConfigError).field).toBe('text_config.model_type');
    expect(thrown(() => parseModelConfig({ ...gemma4b, text_config: undefined }), ModelConfigError).field).toBe('text_config');
    // The text-only model type never reports a skipped part.
    expect(parseModelConfig({ ...gemma4b.text_config, model_type: 'gemma3_text' }).skippedParts).toEqual([]);
  });

  it('refuses unsupported model types, naming the type and the supported ones', () => {
    for (const type of ['gemma', 'mamba', '__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      const e = thrown(() => parseModelConfig({ ...smolLM2, model_type: type }), UnsupportedModelError);
      expect(e.modelType).toBe(type);
      expect(e.message).toContain(`"${type}"`);
      expect(e.message).toContain('llama, mistral, qwen2, qwen3, smollm3, gemma3_text, gemma3, gpt2, phi3');
    }
    // An encoder is pointed to the engine that serves it.
    expect(thrown(() => parseModelConfig({ ...smolLM2, model_type: 'bert' }), UnsupportedModelError).message).toMatch(/encoder: load it with createEmbeddingEngine/);
  });

  it('names the missing or invalid field', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ ...smolLM2, hidden_size: undefined }, 'hidden_size'],
      [{ ...smolLM2, num_attention_heads: '9' }, 'num_attention_heads'],
      [{ ...smolLM2, num_hidden_layers: 2.5 }, 'num_hidden_layers'],
      [{ ...smolLM2, vocab_size: 0 }, 'vocab_size'],
      [{ ...smolLM2, num_key_value_heads: 4 }, 'num_key_value_heads'],
      [{ ...smolLM2, head_dim: undefined, hidden_size: 577 }, 'head_dim'],
      [{ ...smolLM2, hidden_act: 'gelu' }, 'hidden_act'],
      [{ ...smolLM2, rms_norm_eps: -1 }, 'rms_norm_eps'],
      [{ ...smolLM2, tie_word_embeddings: 'yes' }, 'tie_word_embeddings'],
      [{ ...smolLM2, model_type: undefined }, 'model_type'],
      [{ ...smolLM2, max_position_embeddings: undefined }, 'max_position_embeddings'],
      [{ ...smolLM2, rope_scaling: { rope_type: 'llama3', factor: 8 } }, 'rope_scaling.low_freq_factor'],
      [{ ...smolLM2, eos_token_id: [1, 'x'] }, 'eos_token_id'],
      [{ ...smolLM2, eos_token_id: 49152 }, 'eos_token_id'],
      [{ ...smolLM2, bos_token_id: -1 }, 'bos_token_id'],
    ];
    for (const [config, field] of cases) {
      const e = thrown(() => parseModelConfig(JSON.parse(JSON.stringify(config))), ModelConfigError);
      expect(e.field, JSON.stringify(config)).toBe(field);
      expect(e.message).toContain(field);
    }
    expect(() => parseModelConfig('{}')).toThrow(ModelConfigError);
    expect(() => parseModelConfig(smolLM2, [1])).toThrow(ModelConfigError);
  });

  it('unites eos ids from config.json and generation_config.json (numbers or arrays), in order', () => {
    const both = parseModelConfig({ ...smolLM2, eos_token_id: [2, 5] }, { eos_token_id: [5, 7] });
    expect(both.eosTokenIds).toEqual([2, 5, 7]);
    expect(parseModelConfig({ ...smolLM2, eos_token_id: 3 }, { eos_token_id: [3, 4] }).eosTokenIds).toEqual([3, 4]);
    expect(parseModelConfig({ ...smolLM2, eos_token_id: null }, { eos_token_id: 9 }).eosTokenIds).toEqual([9]);
    expect(parseModelConfig({ ...smolLM2, eos_token_id: null }).eosTokenIds).toEqual([]);
    expect(parseModelConfig({ ...smolLM2, bos_token_id: null }, { bos_token_id: 1 }).bosTokenId).toBe(1);
    expect(parseModelConfig({ ...smolLM2, bos_token_id: null }).bosTokenId).toBeNull();
  });

  it('ignores __proto__ and constructor keys and inherited fields (no prototype pollution)', () => {
    const baseline = parseModelConfig(smolLM2);
    const body = JSON.stringify(smolLM2).slice(1, -1);
    const hostile = JSON.parse(
      `{"__proto__": {"tie_word_embeddings": false, "hidden_act": "gelu", "polluted": true}, ` +
        `"constructor": {"prototype": {"polluted": true}}, ${body}, ` +
        `"rope_scaling": {"__proto__": {"rope_type": "llama3"}, "constructor": {"name": "x"}}}`,
    );
    expect(parseModelConfig(hostile, JSON.parse('{"__proto__": {"eos_token_id": 7}}'))).toEqual(baseline);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();

    // Fields reachable only through the prototype chain count as missing.
    const inherited = Object.assign(Object.create({ hidden_size: 576 }) as Record<string, unknown>, smolLM2);
    delete inherited.hidden_size;
    expect(thrown(() => parseModelConfig(inherited), ModelConfigError).field).toBe('hidden_size');
  });
});
