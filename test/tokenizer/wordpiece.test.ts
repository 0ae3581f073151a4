/** Encoder tokenization: BERT's WordPiece through @huggingface/tokenizers, sentence pairs with token types, truncation. */
import { describe, expect, it } from 'vitest';
import { wordPieceTokenizer } from '../../src/dev/wordpiece-tokenizer';
import { InputTooLongError, loadTokenizer } from '../../src/tokenizer/tokenizer';

const files = wordPieceTokenizer(['paris', 'is', 'the', 'capital', 'of', 'france', '.', 'cap', '##ital', '##s', 'a', 'b', 'c', 'd']);
const tokenizer = loadTokenizer({ tokenizerJson: files.tokenizerJson, tokenizerConfig: files.tokenizerConfig });
const id = (token: string) => files.vocab.indexOf(token);
const ids = (tokens: string) => tokens.split(' ').map(id);

/** transformers' slow `longest_first`: one token off the longer text at a time, off the second on a tie. */
function longestFirst(a: number[], b: number[], room: number): [number[], number[]] {
  const [x, y] = [[...a], [...b]];
  while (x.length + y.length > room) {
    if (x.length > y.length) x.pop();
    else y.pop();
  }
  return [x, y];
}

describe('encodeTyped (WordPiece)', () => {
  it('wraps a text in [CLS] … [SEP], lowercases, splits words into pieces, all of type 0', () => {
    const out = tokenizer.encodeTyped('Paris is the [MASK] of France. Capitals');
    expect(out.ids).toEqual(ids('[CLS] paris is the [MASK] of france . capital ##s [SEP]'));
    expect(out.typeIds).toEqual(out.ids.map(() => 0));
  });

  it('types a pair as the template says: [CLS] A [SEP] typed 0, B [SEP] typed 1; unknown words are [UNK]', () => {
    const out = tokenizer.encodeTyped('the capital', { pair: 'of zzz' });
    expect(out.ids).toEqual(ids('[CLS] the capital [SEP] of [UNK] [SEP]'));
    expect(out.typeIds).toEqual([0, 0, 0, 0, 1, 1, 1]);
  });

  it('refuses an input over maxLength with InputTooLongError naming it, and truncates when asked', () => {
    const text = 'a b c d a b c d a b';
    expect(() => tokenizer.encodeTyped(text, { maxLength: 8, param: 'input[2]' })).toThrow(InputTooLongError);
    expect(() => tokenizer.encodeTyped(text, { maxLength: 8, param: 'input[2]' })).toThrow(/input\[2\] has 12 tokens but the model takes at most 8/);
    const cut = tokenizer.encodeTyped(text, { maxLength: 8, truncate: true });
    expect(cut.ids).toEqual(ids('[CLS] a b c d a b [SEP]'));
    expect(tokenizer.encodeTyped(text, { maxLength: 12 }).ids).toHaveLength(12);
    // Not even the special tokens fit.
    expect(() => tokenizer.encodeTyped(text, { maxLength: 1, truncate: true })).toThrow(InputTooLongError);
  });

  it("truncates pairs longest-first, as transformers does, for every split of lengths", () => {
    const words = ['a', 'b', 'c', 'd'];
    const text = (n: number) => Array.from({ length: n }, (_, i) => words[i % 4]).join(' ');
    for (const [na, nb, maxLength] of [[10, 2, 11], [2, 10, 11], [9, 9, 12], [9, 9, 13], [5, 3, 9], [0, 7, 6], [6, 6, 15]]) {
      const out = tokenizer.encodeTyped(text(na), { pair: text(nb), maxLength, truncate: true });
      const a = tokenizer.encode(text(na), { addSpecialTokens: false });
      const b = tokenizer.encode(text(nb), { addSpecialTokens: false });
      const [x, y] = longestFirst(a, b, maxLength - 3);
      expect(out.ids, `${na}+${nb} into ${maxLength}`).toEqual([id('[CLS]'), ...x, id('[SEP]'), ...y, id('[SEP]')]);
      expect(out.typeIds).toEqual([0, ...x.map(() => 0), 0, ...y.map(() => 1), 1]);
    }
  });
});
