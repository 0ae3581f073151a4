import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/tokenizer';
import { modelPath } from '../models';

const loaded = new Map<string, Tokenizer>();
/** Each tokenizer once: the large vocabularies take seconds to load. */
function load(name: string): Tokenizer {
  let tokenizer = loaded.get(name);
  if (!tokenizer) {
    tokenizer = loadTokenizer({
      tokenizerJson: readFileSync(modelPath('..', 'tokenizers', name, 'tokenizer.json'), 'utf8'),
      tokenizerConfig: readFileSync(modelPath('..', 'tokenizers', name, 'tokenizer_config.json'), 'utf8'),
    });
    loaded.set(name, tokenizer);
  }
  return tokenizer;
}

// Multi-byte characters that byte-level BPE splits inside a character and Llama 2 spells as <0xHH> bytes.
const TEXT = 'Grüße, 世界! 🦙 naïve\ttabs\n  x';

describe('tokenBytes', () => {
  it.each([
    ['qwen3', 'byte_level', ''],
    ['llama3_1', 'byte_level', ''],
    // SentencePiece spells the leading space it adds as ▁.
    ['llama2', 'byte_fallback', ' '],
  ])('%s (%s): the bytes of the tokens of a text concatenate to its UTF-8', (name, type, prefix) => {
    const tokenizer = load(name);
    expect(tokenizer.vocabType).toBe(type);
    const ids = tokenizer.encode(TEXT, { addSpecialTokens: false });
    const bytes = ids.flatMap((id) => Array.from(tokenizer.tokenBytes(id)));
    expect(bytes).toEqual(Array.from(new TextEncoder().encode(prefix + TEXT)));
    // Some token holds only part of a character: its bytes are not valid UTF-8 alone.
    expect(ids.some((id) => new TextDecoder().decode(tokenizer.tokenBytes(id)).includes('\uFFFD'))).toBe(true);
  });

  it('special tokens are their text', () => {
    const qwen = load('qwen3');
    const id = qwen.tokenToId('<|im_end|>')!;
    expect(new TextDecoder().decode(qwen.tokenBytes(id))).toBe('<|im_end|>');
  });
});
