import { describe, expect, it } from 'vitest';
import { randomBert, SMALL_BERT } from '../../src/dev/random-encoder';
import { ModelConfigError } from '../../src/model/config';
import { modelPrefix, parseEncoderConfig } from '../../src/model/encoder/config';
import { UnsupportedEncoderError } from '../../src/model/encoder/encoder-model';

/** all-MiniLM-L6-v2's config.json as sentence-transformers ships it (fields that matter). */
const MINILM = {
  architectures: ['BertModel'],
  model_type: 'bert',
  hidden_act: 'gelu',
  hidden_size: 384,
  intermediate_size: 1536,
  layer_norm_eps: 1e-12,
  max_position_embeddings: 512,
  num_attention_heads: 12,
  num_hidden_layers: 6,
  pad_token_id: 0,
  position_embedding_type: 'absolute',
  type_vocab_size: 2,
  vocab_size: 30522,
};

describe('BERT config', () => {
  it('reads all-MiniLM-L6-v2', () => {
    expect(parseEncoderConfig(MINILM, false)).toEqual({
      modelType: 'bert', hiddenSize: 384, layers: 6, heads: 12, headDim: 32, intermediateSize: 1536, vocabSize: 30522,
      maxPositions: 512, typeVocabSize: 2, layerNormEps: 1e-12, hasMlmHead: false, padTokenId: 0, gelu: 'erf', tiedDecoder: true,
    });
    expect(parseEncoderConfig({ ...MINILM, hidden_act: 'gelu_new' }, true)).toMatchObject({ gelu: 'tanh', hasMlmHead: true });
  });

  it('refuses the BERT relatives by name, decoders, and what BERT configs may ask that is not run', () => {
    for (const modelType of ['roberta', 'xlm-roberta', 'distilbert', 'nomic_bert', 'modernbert']) {
      expect(() => parseEncoderConfig({ ...MINILM, model_type: modelType }, false)).toThrow(new RegExp(`"${modelType}" is not a supported encoder \\(.+\\)`));
    }
    expect(() => parseEncoderConfig({ ...MINILM, model_type: 'llama' }, false)).toThrow(UnsupportedEncoderError);
    expect(() => parseEncoderConfig({ ...MINILM, is_decoder: true }, false)).toThrow(UnsupportedEncoderError);
    expect(() => parseEncoderConfig({ ...MINILM, position_embedding_type: 'relative_key' }, false)).toThrow(ModelConfigError);
    expect(() => parseEncoderConfig({ ...MINILM, hidden_act: 'relu' }, false)).toThrow(ModelConfigError);
    expect(() => parseEncoderConfig({ ...MINILM, num_attention_heads: 5 }, false)).toThrow(ModelConfigError);
    expect(() => parseEncoderConfig({ ...MINILM, num_hidden_layers: 100_000 }, false)).toThrow(ModelConfigError);
    expect(() => parseEncoderConfig({ ...MINILM, vocab_size: -1 }, false)).toThrow(ModelConfigError);
  });

  it('finds the encoder under bert. (BertForMaskedLM) or at the top (BertModel)', () => {
    expect(modelPrefix(randomBert({ ...SMALL_BERT, layers: 1 }, 1).tensors)).toBe('bert.');
    expect(modelPrefix(randomBert({ ...SMALL_BERT, layers: 1, mlmHead: false }, 1).tensors)).toBe('');
    expect(modelPrefix(new Set(['model.embed_tokens.weight']))).toBeUndefined();
  });
});
