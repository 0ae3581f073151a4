/**
 * A BERT-style WordPiece tokenizer.json built from a word list, laid out as bert-base-uncased's is (BertNormalizer
 * lowercasing, BertPreTokenizer, WordPiece with "##" continuations, a TemplateProcessing post-processor for
 * `[CLS] A [SEP]` and `[CLS] A [SEP] B [SEP]` with token types 0 and 1): for tests of encoder models and the
 * embeddings API, which need a real tokenizer with a small vocabulary.
 */

/** The special tokens, at ids 0…4 as listed. */
export const WORDPIECE_SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;

export interface WordPieceFiles {
  tokenizerJson: string;
  tokenizerConfig: string;
  /** Tokens by id: the specials, then `pieces` in order. */
  vocab: string[];
}

/** `pieces` are words and "##"-prefixed continuations; ids follow the specials in the order given. */
export function wordPieceTokenizer(pieces: readonly string[], options: { modelMaxLength?: number } = {}): WordPieceFiles {
  const vocab = [...WORDPIECE_SPECIALS, ...new Set(pieces)];
  const ids = Object.fromEntries(vocab.map((token, id) => [token, id]));
  const special = (token: string) => ({ id: ids[token], content: token, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const cls = { id: '[CLS]', ids: [ids['[CLS]']], tokens: ['[CLS]'] };
  const sep = { id: '[SEP]', ids: [ids['[SEP]']], tokens: ['[SEP]'] };
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: WORDPIECE_SPECIALS.map(special),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: { '[CLS]': cls, '[SEP]': sep },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: ids },
  };
  const config = {
    tokenizer_class: 'BertTokenizer',
    do_lower_case: true,
    cls_token: '[CLS]',
    sep_token: '[SEP]',
    mask_token: '[MASK]',
    pad_token: '[PAD]',
    unk_token: '[UNK]',
    model_max_length: options.modelMaxLength ?? 512,
  };
  return { tokenizerJson: JSON.stringify(json), tokenizerConfig: JSON.stringify(config), vocab };
}
