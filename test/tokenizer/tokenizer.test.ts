import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRng, freshSeed } from '../../src/util/random';
import { createStreamDecoder } from '../../src/tokenizer/stream';
import { loadTokenizer, TokenizerError, type Tokenizer } from '../../src/tokenizer/tokenizer';
import { llama2TokenizerPath, modelPath } from '../models';

const llamaDir = llama2TokenizerPath('.');
const storiesDir = modelPath('stories260K');

function readShared(dir: string, file: string): string {
  return readFileSync(resolve(dir, file), 'utf8');
}

const llamaJson = readShared(llamaDir, 'tokenizer.json');
const llamaConfig = readShared(llamaDir, 'tokenizer_config.json');
const storiesJsonText = readShared(storiesDir, 'tokenizer.json');
const storiesConfigText = readShared(storiesDir, 'tokenizer_config.json');
const llama = loadTokenizer({ tokenizerJson: llamaJson, tokenizerConfig: llamaConfig });

type Json = Record<string, unknown>;
const storiesJson = (): Json => JSON.parse(storiesJsonText) as Json;
const storiesConfig = (): Json => JSON.parse(storiesConfigText) as Json;
const storiesVocab = (json: Json): Record<string, number> => (json.model as { vocab: Record<string, number> }).vocab;

const byteToken = (b: number): string => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
const utf8Pieces = (s: string): string[] => Array.from(new TextEncoder().encode(s), byteToken);

/**
 * Expected Llama-2 encodings (after BOS = 1). The reference SentencePiece encoder cannot run here; the shared
 * README states this tokenizer.json agrees with it on Unicode, emoji, tabs and leading spaces, so the table
 * is written as vocabulary pieces (checked against tokenToId below) with the ids they map to. Legacy
 * SentencePiece prepends "▁" and turns spaces into "▁"; characters outside the vocabulary (emoji, tab,
 * newline) fall back to their UTF-8 bytes, byte b being the piece <0xHH> with id b + 3.
 */
const llamaTable: { text: string; pieces: string[]; ids: number[] }[] = [
  { text: 'Hello world', pieces: ['▁Hello', '▁world'], ids: [15043, 3186] },
  { text: ' Hello', pieces: ['▁', '▁Hello'], ids: [29871, 15043] },
  {
    text: '\tTabbed\nnewline',
    pieces: ['▁', '<0x09>', 'Tab', 'bed', '<0x0A>', 'new', 'line'],
    ids: [29871, 12, 8863, 2580, 13, 1482, 1220],
  },
  {
    text: 'emoji 🙂👍🏽',
    pieces: ['▁em', 'o', 'ji', '▁', ...utf8Pieces('🙂'), ...utf8Pieces('👍'), ...utf8Pieces('🏽')],
    ids: [953, 29877, 2397, 29871, 243, 162, 156, 133, 243, 162, 148, 144, 243, 162, 146, 192],
  },
  { text: '中文字符', pieces: ['▁', '中', '文', '字', '符'], ids: [29871, 30275, 30333, 30578, 31277] },
  {
    text: 'accents: café naïve Ångström',
    pieces: ['▁acc', 'ents', ':', '▁c', 'afé', '▁na', 'ï', 've', '▁Å', 'ng', 'ström'],
    ids: [1035, 1237, 29901, 274, 28059, 1055, 30085, 345, 11260, 865, 25961],
  },
  { text: '', pieces: [], ids: [] },
  { text: '   multiple   spaces', pieces: ['▁▁▁', '▁multiple', '▁▁', '▁spaces'], ids: [1678, 2999, 259, 8162] },
];

const roundTripTexts = [
  ...llamaTable.map((row) => row.text),
  '  leading and trailing  ',
  'line one\n\nline two\r\n',
  'mixed 🙂 中文 and ✅ done',
  'Zürich — “quotes” … 🇺🇳',
];

describe('Llama-2 tokenizer', () => {
  it('has the Llama-2 special tokens and vocabulary size', () => {
    expect(llama.vocabSize).toBe(32000);
    expect(llama.bosTokenId).toBe(1);
    expect(llama.eosTokenIds).toEqual([2]);
    expect([...llama.specialTokenIds].sort()).toEqual([0, 1, 2]);
    expect(llama.idToToken(1)).toBe('<s>');
    expect(llama.tokenToId('</s>')).toBe(2);
  });

  it('maps byte b to the piece <0xHH> with id b + 3', () => {
    for (let b = 0; b < 256; b++) expect(llama.tokenToId(byteToken(b))).toBe(b + 3);
  });

  it('encodes the known Llama-2 cases', () => {
    expect(llama.encode('Hello world')).toEqual([1, 15043, 3186]);
    expect(llama.encode(' Hello')).toEqual([1, 29871, 15043]);
  });

  it.each(llamaTable)('encodes $text', ({ text, pieces, ids }) => {
    expect(pieces.map((p) => llama.tokenToId(p))).toEqual(ids);
    expect(llama.encode(text)).toEqual([1, ...ids]);
    expect(llama.encode(text, { addSpecialTokens: false })).toEqual(ids);
  });

  it('adds BOS once, though both the post-processor and add_bos_token ask for it', () => {
    const ids = llama.encode('Hello world');
    expect(ids.filter((id) => id === 1)).toHaveLength(1);
  });

  it.each(roundTripTexts)('round-trips %j', (text) => {
    expect(llama.decode(llama.encode(text), { skipSpecialTokens: true })).toBe(text);
  });

  // Special-token text in the input becomes the special token, as in transformers. Each text run after it
  // gets its own "▁" (legacy SentencePiece), so decoding adds a space after every special token.
  it('encodes special-token text in the input as the special token', () => {
    const ids = llama.encode('<s> looks special </s>', { addSpecialTokens: false });
    expect(ids.map((id) => llama.idToToken(id))).toEqual(['<s>', '▁', '▁looks', '▁special', '▁', '</s>']);
    expect(llama.decode(ids)).toBe('<s>  looks special </s>');
    expect(llama.decode(llama.encode('a</s>b', { addSpecialTokens: false }))).toBe('a</s> b');
  });

  it('keeps special tokens in decoded text unless asked to skip them', () => {
    const ids = [...llama.encode('Hello'), 2];
    expect(llama.decode(ids)).toBe('<s> Hello</s>');
    expect(llama.decode(ids, { skipSpecialTokens: true })).toBe('Hello');
    expect(llama.decode([])).toBe('');
    expect(llama.decode([1, 2], { skipSpecialTokens: true })).toBe('');
  });

  it('rejects ids outside the vocabulary', () => {
    for (const id of [32000, -1, 1.5, Number.NaN]) expect(() => llama.decode([1, id])).toThrow(TokenizerError);
  });

  it('takes extra EOS ids from the model config', () => {
    const t = loadTokenizer({ tokenizerJson: llamaJson, tokenizerConfig: llamaConfig });
    t.addEosTokenIds([13, 2, 13]);
    expect(t.eosTokenIds).toEqual([2, 13]);
    expect(() => t.addEosTokenIds([32000])).toThrow(TokenizerError);
  });
});

describe('stories260K tokenizer', () => {
  const stories = loadTokenizer({ tokenizerJson: storiesJsonText, tokenizerConfig: storiesConfigText });
  const text = 'Once upon a time, there was a little girl named Lily.';

  it('loads and round-trips', () => {
    expect(stories.vocabSize).toBe(512);
    const ids = stories.encode(text);
    expect(ids[0]).toBe(1);
    expect(ids.slice(1, 3)).toEqual([stories.tokenToId('▁Once'), stories.tokenToId('▁upon')]);
    expect(stories.decode(ids, { skipSpecialTokens: true })).toBe(text);
  });

  it('accepts parsed objects as well as text', () => {
    const t = loadTokenizer({ tokenizerJson: storiesJson(), tokenizerConfig: storiesConfig() });
    expect(t.encode(text)).toEqual(stories.encode(text));
  });
});

describe('BOS and EOS policy', () => {
  const load = (json: Json, config?: Json): Tokenizer => loadTokenizer({ tokenizerJson: json, tokenizerConfig: config });
  const bare = (t: Tokenizer): number[] => t.encode('Hi there', { addSpecialTokens: false });

  it('adds BOS from add_bos_token when the post-processor does not', () => {
    const t = load({ ...storiesJson(), post_processor: null }, storiesConfig());
    expect(t.encode('Hi there')).toEqual([1, ...bare(t)]);
  });

  it('adds EOS once from add_eos_token', () => {
    const t = load(storiesJson(), { ...storiesConfig(), add_eos_token: true });
    expect(t.encode('Hi there')).toEqual([1, ...bare(t), 2]);
  });

  it('drops the post-processor BOS when add_bos_token is false', () => {
    const t = load(storiesJson(), { ...storiesConfig(), add_bos_token: false });
    expect(t.encode('Hi there')).toEqual(bare(t));
  });

  it('without tokenizer_config.json, follows the post-processor and finds BOS/EOS from it and the vocabulary', () => {
    const t = load(storiesJson());
    expect(t.encode('Hi there')).toEqual([1, ...bare(t)]);
    expect(t.bosTokenId).toBe(1);
    expect(t.eosTokenIds).toEqual([2]);
  });

  it('reads special tokens written as AddedToken objects', () => {
    const t = load(storiesJson(), { ...storiesConfig(), eos_token: { __type: 'AddedToken', content: '</s>' } });
    expect(t.eosTokenIds).toEqual([2]);
  });
});

describe('streaming decoder', () => {
  const stream = (t: Tokenizer, ids: number[], skipSpecialTokens = true): string[] => {
    const decoder = createStreamDecoder(t, { skipSpecialTokens });
    return [...ids.map((id) => decoder.push(id)), decoder.flush()];
  };

  it('keeps the SentencePiece leading space of later words', () => {
    expect(stream(llama, llama.encode('Hello world'))).toEqual(['', 'Hello', ' world', '']);
    expect(stream(llama, llama.encode(' Hello'))).toEqual(['', '', ' Hello', '']);
  });

  it('holds a character split across byte tokens until it is complete', () => {
    const check = [0xe2, 0x9c, 0x85].map((b) => b + 3); // "✅" as UTF-8 bytes
    expect(stream(llama, [1, llama.tokenToId('▁Done') ?? -1, ...check, 29991])).toEqual([
      '',
      'Done',
      '',
      '',
      '✅',
      '!',
      '',
    ]);
  });

  it.each(roundTripTexts)('streams %j one id at a time', (text) => {
    const ids = llama.encode(text);
    for (const skip of [true, false]) {
      const deltas = stream(llama, ids, skip);
      for (const d of deltas) expect(d).not.toContain('\uFFFD');
      expect(deltas.join('')).toBe(llama.decode(ids, { skipSpecialTokens: skip }));
    }
  });

  it('streams text with special tokens inside', () => {
    const ids = [...llama.encode('A 🙂'), 2, ...llama.encode(' 中文 B', { addSpecialTokens: false })];
    for (const skip of [true, false]) {
      expect(stream(llama, ids, skip).join('')).toBe(llama.decode(ids, { skipSpecialTokens: skip }));
    }
  });

  it('joins to the full decode for random id sequences, invalid byte runs included', () => {
    const rng = createRng(freshSeed());
    // Bytes (ids 3..258) often, so that characters split, stay incomplete or are invalid.
    const pick = (): number => [() => 3 + rng.int(256), () => rng.int(32000), () => 29871, () => 1 + rng.int(2)][rng.int(4)]();
    for (let trial = 0; trial < 300; trial++) {
      const ids = Array.from({ length: 1 + rng.int(40) }, pick);
      for (const skip of [true, false]) {
        const joined = stream(llama, ids, skip).join('');
        expect(joined, `seed ${rng.seed}, ids ${JSON.stringify(ids)}`).toBe(llama.decode(ids, { skipSpecialTokens: skip }));
      }
    }
  });

  it('flush gives back an incomplete character', () => {
    const ids = [0xe2 + 3, 0x9c + 3];
    const deltas = stream(llama, ids);
    expect(deltas.slice(0, 2)).toEqual(['', '']);
    expect(deltas[2]).toBe(llama.decode(ids));
    expect(deltas[2]).toContain('\uFFFD');
  });

  it('rejects a bad id and carries on', () => {
    const decoder = createStreamDecoder(llama);
    expect(decoder.push(15043)).toBe('Hello');
    expect(() => decoder.push(99999)).toThrow(TokenizerError);
    expect(decoder.push(3186)).toBe(' world');
  });
});

describe('validation', () => {
  const rejects = (source: { tokenizerJson: string | object; tokenizerConfig?: string | object }, message: RegExp): void => {
    expect(() => loadTokenizer(source)).toThrow(TokenizerError);
    expect(() => loadTokenizer(source)).toThrow(message);
  };

  it('rejects invalid JSON', () => {
    rejects({ tokenizerJson: '{"model": ' }, /tokenizer\.json is not valid JSON/);
    rejects({ tokenizerJson: storiesJsonText, tokenizerConfig: '{,}' }, /tokenizer_config\.json is not valid JSON/);
    rejects({ tokenizerJson: '[1, 2]' }, /must hold a JSON object/);
  });

  it('rejects a tokenizer.json without a model section', () => {
    const { model: _model, ...noModel } = storiesJson();
    rejects({ tokenizerJson: noModel }, /no "model" section/);
    rejects({ tokenizerJson: { ...storiesJson(), model: { type: 'BPE' } } }, /no "model" section/);
    rejects({ tokenizerJson: storiesConfigText }, /no "model" section/);
  });

  it.each(['<0x-1>', '<0xZZ>', '<0x100>', '<0x1G>', '<0x 1>', '<0x>', '<0xE2 >'])('rejects the malformed byte token %j', (token) => {
    const json = storiesJson();
    storiesVocab(json)[token] = 512;
    rejects({ tokenizerJson: json }, /looks like a byte-fallback token/);
    const added = storiesJson();
    (added.added_tokens as Json[]).push({ id: 512, content: token, special: true });
    rejects({ tokenizerJson: added }, /looks like a byte-fallback token/);
  });

  it.each(['<0x41', '0x41>', '<0xe2>', '<0X41>'])('accepts the byte-token look-alike %j', (token) => {
    const json = storiesJson();
    storiesVocab(json)[token] = 512;
    expect(loadTokenizer({ tokenizerJson: json }).vocabSize).toBe(513);
  });

  it('checks byte tokens only in tokenizers that use byte fallback', () => {
    const json = storiesJson();
    storiesVocab(json)['<0x-1>'] = 512;
    (json.model as Json).byte_fallback = false;
    json.decoder = { type: 'Fuse' };
    expect(loadTokenizer({ tokenizerJson: json }).tokenToId('<0x-1>')).toBe(512);
  });

  it('rejects BOS/EOS tokens that are not in the vocabulary, or missing when they must be added', () => {
    rejects({ tokenizerJson: storiesJsonText, tokenizerConfig: { bos_token: '<start>' } }, /bos_token "<start>" is not in the vocabulary/);
    const noTemplate = { ...storiesJson(), post_processor: null };
    rejects({ tokenizerJson: noTemplate, tokenizerConfig: { add_bos_token: true } }, /names no bos_token/);
  });

  it('tolerates what it does not need: no BOS with add_bos_token false (Qwen2-style), an unknown pad token', () => {
    const noTemplate = { ...storiesJson(), post_processor: null };
    const t = loadTokenizer({ tokenizerJson: noTemplate, tokenizerConfig: { add_bos_token: false, bos_token: null, pad_token: '<pad>' } });
    expect(t.bosTokenId).toBeNull();
    expect(t.encode('Hi')).toEqual(t.encode('Hi', { addSpecialTokens: false }));
  });
});
