/**
 * Random-weight BERT checkpoints for tests and benchmarks: a config.json object and tensors under the Hugging Face
 * names, as BertModel (sentence-transformers layout, no prefix) or BertForMaskedLM (`bert.` prefix and the
 * `cls.predictions.*` head, decoder tied to the word embeddings) writes them. Seeded, so a failure replays.
 * Scales as in random-model.ts: projections N(0, 1/in), embeddings N(0, 16/D), norms 1 ± 0.1, biases N(0, 0.1²).
 */
import { memoryFiles, type ModelFiles } from '../model/files';
import { EMBEDDING_NAMES, layerNames, MLM_NAMES } from '../model/encoder/config';
import type { WeightDtype, WeightTensor } from '../model/weights';
import { createRng } from '../util/random';
import { Generator } from './random-model';
import { writeSafetensors } from './safetensors-writer';

export interface RandomBertOptions {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  layers: number;
  heads: number;
  maxPositions: number;
  typeVocabSize: number;
  /** BertForMaskedLM: `bert.` prefix and the MLM head; otherwise BertModel. */
  mlmHead: boolean;
  /** hidden_act; default "gelu" (the erf form). */
  hiddenAct?: string;
  layerNormEps?: number;
  /** Dtype of every tensor, as in a real checkpoint; default f32. */
  dtype?: WeightDtype;
  /** An MLM decoder of its own (tie_word_embeddings false), under `cls.predictions.decoder.*`. */
  untiedDecoder?: boolean;
}

/** all-MiniLM-L6-v2's shape (6 layers, 384 wide, 12 heads of 32, 1536 inner, 30522 tokens, 512 positions). */
export const MINILM_L6: RandomBertOptions = {
  vocabSize: 30522,
  hiddenSize: 384,
  intermediateSize: 1536,
  layers: 6,
  heads: 12,
  maxPositions: 512,
  typeVocabSize: 2,
  mlmHead: false,
};

/** MiniLM-L6 shrunk for tests: 2 layers, 2 heads of MiniLM's 32 (so 64 wide), an odd vocabulary and inner width. */
export const SMALL_BERT: RandomBertOptions = {
  vocabSize: 211,
  hiddenSize: 64,
  intermediateSize: 132,
  layers: 2,
  heads: 2,
  maxPositions: 96,
  typeVocabSize: 2,
  mlmHead: true,
};

export interface RandomBert {
  config: Record<string, unknown>;
  /** Tensors by checkpoint name, in checkpoint order. */
  tensors: Map<string, WeightTensor>;
}

export function randomBert(o: RandomBertOptions, seed: number): RandomBert {
  const config: Record<string, unknown> = {
    architectures: [o.mlmHead ? 'BertForMaskedLM' : 'BertModel'],
    model_type: 'bert',
    vocab_size: o.vocabSize,
    hidden_size: o.hiddenSize,
    num_hidden_layers: o.layers,
    num_attention_heads: o.heads,
    intermediate_size: o.intermediateSize,
    hidden_act: o.hiddenAct ?? 'gelu',
    max_position_embeddings: o.maxPositions,
    type_vocab_size: o.typeVocabSize,
    layer_norm_eps: o.layerNormEps ?? 1e-12,
    pad_token_id: 0,
    position_embedding_type: 'absolute',
    ...(o.untiedDecoder ? { tie_word_embeddings: false } : {}),
  };
  const gen = new Generator(createRng(seed), o.dtype ?? 'f32');
  const D = o.hiddenSize;
  const tensors = new Map<string, WeightTensor>();
  const prefix = o.mlmHead ? 'bert.' : '';
  const embedStd = 4 / Math.sqrt(D);
  const linear = (name: string, out: number, inp: number, prefixed = true) => {
    tensors.set(`${prefixed ? prefix : ''}${name}.weight`, gen.normal([out, inp], 1 / Math.sqrt(inp)));
    tensors.set(`${prefixed ? prefix : ''}${name}.bias`, gen.bias(out));
  };
  const norm = (names: { weight: readonly string[]; bias: readonly string[] }, prefixed = true) => {
    tensors.set(`${prefixed ? prefix : ''}${names.weight[0]}`, gen.norm(D));
    tensors.set(`${prefixed ? prefix : ''}${names.bias[0]}`, gen.bias(D));
  };
  tensors.set(prefix + EMBEDDING_NAMES.word, gen.normal([o.vocabSize, D], embedStd));
  tensors.set(prefix + EMBEDDING_NAMES.position, gen.normal([o.maxPositions, D], embedStd));
  tensors.set(prefix + EMBEDDING_NAMES.tokenType, gen.normal([o.typeVocabSize, D], embedStd));
  norm(EMBEDDING_NAMES.norm);
  for (let l = 0; l < o.layers; l++) {
    const n = layerNames(l);
    for (const name of [n.query, n.key, n.value, n.attentionOutput]) linear(name, D, D);
    norm(n.attentionNorm);
    linear(n.intermediate, o.intermediateSize, D);
    linear(n.output, D, o.intermediateSize);
    norm(n.outputNorm);
  }
  if (o.mlmHead) {
    linear(MLM_NAMES.transform, D, D, false);
    norm(MLM_NAMES.transformNorm, false);
    if (o.untiedDecoder) {
      tensors.set(MLM_NAMES.decoder, gen.normal([o.vocabSize, D], embedStd));
      // The bias under the decoder's name only, as a checkpoint may store the tied pair.
      tensors.set(MLM_NAMES.bias[1], gen.bias(o.vocabSize));
    } else {
      tensors.set(MLM_NAMES.bias[0], gen.bias(o.vocabSize));
    }
  }
  return { config, tensors };
}

/** The checkpoint as a model folder in memory: config.json and model.safetensors. */
export function randomBertFiles(model: RandomBert, name = 'random-bert'): ModelFiles {
  const safetensors = writeSafetensors(
    [...model.tensors].map(([tensorName, t]) => ({ name: tensorName, dtype: t.dtype === 'f16' ? 'F16' : 'F32', shape: t.shape, data: t.data })),
  );
  return memoryFiles(name, new Map<string, string | Uint8Array>([['config.json', JSON.stringify(model.config)], ['model.safetensors', safetensors]]));
}
