/**
 * config.json of a BERT checkpoint → EncoderConfig, and the checkpoint's tensor names.
 *
 * Accepted: model_type "bert" with absolute positions and GELU: BertModel and BertForMaskedLM /
 * BertForPreTraining checkpoints (the latter under a `bert.` prefix, with the `cls.predictions.*` MLM head) and
 * the sentence-transformers repos built on BertModel (all-MiniLM-L6-v2, bge-small/base-en-v1.5, e5-small-v2).
 * Refused by name: the BERT relatives whose weights or positions differ (RoBERTa and XLM-R offset their
 * positions by the padding id, DistilBERT has no token types and other names, nomic-bert and ModernBERT use
 * rotary positions and gated MLPs, ALBERT shares layers, …), relative position embeddings, and decoders.
 */
import { Fields, ModelConfigError } from '../config';
import { isJsonObject } from '../../util/json';
import { UnsupportedEncoderError, type EncoderConfig } from './encoder-model';

/** Encoder types people try with a BERT runtime, and why each is not one. */
const REFUSED: Readonly<Record<string, string>> = {
  roberta: 'RoBERTa offsets positions by the padding id and names its weights differently',
  'xlm-roberta': 'XLM-RoBERTa offsets positions by the padding id and names its weights differently',
  camembert: 'CamemBERT is a RoBERTa',
  distilbert: 'DistilBERT has no token types and names its weights differently',
  albert: 'ALBERT factorises its embeddings and shares one layer',
  electra: 'ELECTRA projects its embeddings',
  deberta: 'DeBERTa uses disentangled relative attention',
  'deberta-v2': 'DeBERTa uses disentangled relative attention',
  mpnet: 'MPNet uses relative position buckets',
  nomic_bert: 'nomic-bert uses rotary positions and a gated MLP',
  modernbert: 'ModernBERT uses rotary positions, a gated MLP and local attention',
  jina_bert: 'Jina BERT uses ALiBi positions',
};

/** Activations of the intermediate layer and the MLM transform: HF's ACT2FN names with a GELU we run. */
const ACTIVATIONS: Readonly<Record<string, 'erf' | 'tanh'>> = { gelu: 'erf', gelu_new: 'tanh', gelu_pytorch_tanh: 'tanh' };

/** Bounds on sizes from config.json, checked before anything is allocated from them. */
const MAX_HIDDEN = 16384;
const MAX_LAYERS = 256;
const MAX_VOCAB = 1 << 20;
const MAX_POSITIONS = 1 << 16;
const MAX_TYPES = 1024;

/** The config with the activation the GPU and the reference need, which the public EncoderConfig leaves out. */
export interface BertConfig extends EncoderConfig {
  /** GELU form of hidden_act: 'erf' ("gelu", BERT's) or 'tanh' ("gelu_new", "gelu_pytorch_tanh"). */
  readonly gelu: 'erf' | 'tanh';
  /** Width of one attention head: hiddenSize / heads. */
  readonly headDim: number;
  /**
   * The MLM decoder is the word embedding matrix [tie_word_embeddings, default true]: transformers then ignores a
   * stored `cls.predictions.decoder.weight`, and so do we (no second copy of the vocabulary on the GPU).
   */
  readonly tiedDecoder: boolean;
}

function bounded(fields: Fields, key: string, max: number, fallback?: number): number {
  const v = fields.int(key, fallback);
  if (v > max) throw new ModelConfigError(key, `${v} is over the ${max} this runtime accepts`);
  return v;
}

/** `hasMlmHead` comes from the checkpoint's tensors, not the config (sentence-transformers repos drop the head). */
export function parseEncoderConfig(json: unknown, hasMlmHead: boolean): BertConfig {
  if (!isJsonObject(json)) throw new ModelConfigError('config.json', 'must be a JSON object');
  const f = new Fields(json);
  const modelType = f.string('model_type');
  if (modelType in REFUSED) throw new UnsupportedEncoderError(modelType, REFUSED[modelType]);
  if (modelType !== 'bert') throw new UnsupportedEncoderError(modelType);
  if (f.bool('is_decoder', false)) throw new UnsupportedEncoderError(modelType, 'is_decoder is set: a causal BERT is not an encoder');
  const positions = f.string('position_embedding_type', 'absolute');
  if (positions !== 'absolute') throw new ModelConfigError('position_embedding_type', `"${positions}" is not supported, only "absolute"`);
  const act = f.string('hidden_act', 'gelu');
  const gelu = ACTIVATIONS[act];
  if (gelu === undefined) throw new ModelConfigError('hidden_act', `"${act}" is not supported; accepted: ${Object.keys(ACTIVATIONS).join(', ')}`);

  const hiddenSize = bounded(f, 'hidden_size', MAX_HIDDEN, 768);
  const heads = bounded(f, 'num_attention_heads', MAX_HIDDEN, 12);
  if (hiddenSize % heads !== 0) throw new ModelConfigError('num_attention_heads', `${heads} does not divide hidden_size ${hiddenSize}`);
  const headDim = hiddenSize / heads;
  if (headDim % 4 !== 0 || headDim > 256) throw new ModelConfigError('num_attention_heads', `heads of ${headDim} dims are not supported (a multiple of 4, at most 256)`);
  const layerNormEps = f.positive('layer_norm_eps', 1e-12);
  const padTokenId = f.tokenId('pad_token_id');
  return {
    modelType,
    hiddenSize,
    layers: bounded(f, 'num_hidden_layers', MAX_LAYERS, 12),
    heads,
    headDim,
    intermediateSize: bounded(f, 'intermediate_size', 4 * MAX_HIDDEN, 3072),
    vocabSize: bounded(f, 'vocab_size', MAX_VOCAB, 30522),
    maxPositions: bounded(f, 'max_position_embeddings', MAX_POSITIONS, 512),
    typeVocabSize: bounded(f, 'type_vocab_size', MAX_TYPES, 2),
    layerNormEps,
    hasMlmHead,
    padTokenId,
    gelu,
    tiedDecoder: f.bool('tie_word_embeddings', true),
  };
}

/** A LayerNorm's weight and bias: `.weight`/`.bias`, or TF-converted checkpoints' `.gamma`/`.beta`. */
export interface NormNames {
  weight: readonly string[];
  bias: readonly string[];
}

const norm = (base: string): NormNames => ({ weight: [`${base}.weight`, `${base}.gamma`], bias: [`${base}.bias`, `${base}.beta`] });

/** The checkpoint's names for one encoder layer (under the model prefix). */
export function layerNames(l: number) {
  const p = `encoder.layer.${l}.`;
  return {
    query: `${p}attention.self.query`,
    key: `${p}attention.self.key`,
    value: `${p}attention.self.value`,
    attentionOutput: `${p}attention.output.dense`,
    attentionNorm: norm(`${p}attention.output.LayerNorm`),
    intermediate: `${p}intermediate.dense`,
    output: `${p}output.dense`,
    outputNorm: norm(`${p}output.LayerNorm`),
  };
}

export const EMBEDDING_NAMES = {
  word: 'embeddings.word_embeddings.weight',
  position: 'embeddings.position_embeddings.weight',
  tokenType: 'embeddings.token_type_embeddings.weight',
  norm: norm('embeddings.LayerNorm'),
};

/**
 * The MLM head (BertForMaskedLM, BertForPreTraining), never under the `bert.` prefix. The decoder's weight is
 * tied to the word embeddings unless the config says otherwise (checkpoints may omit it); its bias is
 * `cls.predictions.bias`, which transformers ties to `cls.predictions.decoder.bias` (read where only that is stored).
 */
export const MLM_NAMES = {
  transform: 'cls.predictions.transform.dense',
  transformNorm: norm('cls.predictions.transform.LayerNorm'),
  decoder: 'cls.predictions.decoder.weight',
  bias: ['cls.predictions.bias', 'cls.predictions.decoder.bias'],
};

/** The prefix of the encoder's tensors: 'bert.' in BertForMaskedLM/BertForPreTraining checkpoints, '' in BertModel ones. */
export function modelPrefix(names: ReadonlySet<string> | ReadonlyMap<string, unknown>): string | undefined {
  if (names.has(`bert.${EMBEDDING_NAMES.word}`)) return 'bert.';
  if (names.has(EMBEDDING_NAMES.word)) return '';
  return undefined;
}
