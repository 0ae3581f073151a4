/**
 * The tokenizer layer: wraps @huggingface/tokenizers (tokenizer.json) and adds what it leaves to the caller:
 * tokenizer_config.json's add_bos_token / add_eos_token, special-token ids, id checks, and validation of
 * the files before they can misbehave quietly.
 */
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { isJsonObject, type JsonObject } from '../util/json';
import { tokenBytes, vocabTypeOf, type VocabType } from './token-bytes';

/** The tokenizer files are unusable, or an id cannot be decoded. */
export class TokenizerError extends Error {
  override readonly name = 'TokenizerError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * An input is longer than the model takes and truncation was not asked for. Nothing ran; shorten the input or
 * ask for truncation (`truncate: true`).
 */
export class InputTooLongError extends Error {
  override readonly name = 'InputTooLongError';
  constructor(
    /** Tokens the input has, special tokens included. */
    readonly tokens: number,
    /** Most tokens the model takes. */
    readonly maxTokens: number,
    /** Which input, e.g. 'input[3]'. */
    readonly param: string,
  ) {
    super(`${param} has ${tokens} tokens but the model takes at most ${maxTokens}; shorten it or pass truncate: true`);
  }
}

/** An encoder's input: token ids and the segment (token type) of each. */
export interface TypedIds {
  ids: number[];
  typeIds: number[];
}

export interface EncodeTypedOptions {
  /** A second text (a sentence pair: query and passage, two sentences to compare), typed as the post-processor says (BERT: 1). */
  pair?: string;
  /** Most tokens, special tokens included. */
  maxLength?: number;
  /**
   * Cut the text to maxLength instead of throwing InputTooLongError; a pair loses tokens from its longer text
   * first, one at a time (the second when they tie), as transformers' `longest_first` does.
   */
  truncate?: boolean;
  /** Names the input in errors (default 'input'). */
  param?: string;
}

/** Where the post-processor puts its special tokens around a pair's texts, with the type of every position. */
interface PairTemplate {
  prefix: TypedIds;
  middle: TypedIds;
  suffix: TypedIds;
  typeA: number;
  typeB: number;
}

export interface EncodeOptions {
  /** Add BOS/EOS as the tokenizer files ask (default true). False for text spliced into a prompt. */
  addSpecialTokens?: boolean;
}

export interface PieceEncodeOptions extends EncodeOptions {
  /** Checked between pieces; an abort ends the encoding with the signal's reason. */
  signal?: AbortSignal;
  /** Characters per piece, at least (pieces end at the next exact cut). Default 64 Ki. */
  pieceChars?: number;
}

/** Where encoding the parts of a text separately gives the same ids as encoding it whole. */
interface CutRules {
  /** Matches the added tokens (split out before anything else), or null when there are none. */
  addedTokens: RegExp | null;
  /** Whether the GPT-4-style split regex bounds a pre-token after a newline run followed by a non-space. */
  afterNewlines: boolean;
}

const PIECE_CHARS = 1 << 16;

export interface DecodeOptions {
  /** Leave out special tokens such as <s> and </s> (default false). */
  skipSpecialTokens?: boolean;
}

export interface TokenizerSource {
  /** tokenizer.json, as text or already parsed. */
  tokenizerJson: string | object;
  /** tokenizer_config.json, as text or already parsed. */
  tokenizerConfig?: string | object;
}

export class Tokenizer {
  private readonly eos: number[];
  private pairTemplate: PairTemplate | undefined;

  /** @internal Use loadTokenizer. */
  constructor(
    private readonly hf: HfTokenizer,
    /** Number of ids the tokenizer knows (largest id + 1); a model's embedding may be padded beyond it. */
    readonly vocabSize: number,
    /**
     * The longest token in UTF-16 units, an upper bound on the text one token decodes to (a byte-level token
     * spells each byte as one character; a byte-fallback token <0xHH> is one byte): a cheap bound on the
     * fewest tokens a text can take, checked before tokenizing it.
     */
    readonly maxTokenChars: number,
    readonly bosTokenId: number | null,
    eosTokenIds: number[],
    /** Added tokens marked special, plus those tokenizer_config.json names (bos, eos, unk, pad, additional). */
    readonly specialTokenIds: ReadonlySet<number>,
    private readonly prefix: readonly number[],
    private readonly suffix: readonly number[],
    /** null when no cut is known to be exact: the text is then encoded in one piece. */
    private readonly cuts: CutRules | null,
    /** How the vocabulary spells bytes, for `tokenBytes`. */
    readonly vocabType: VocabType = 'raw',
    /** The token fill-mask predicts (tokenizer_config.json's mask_token, else `[MASK]`), or null without one. */
    readonly maskTokenId: number | null = null,
  ) {
    this.eos = eosTokenIds;
  }

  /** Ids that end generation: tokenizer_config.json's eos_token, plus any the model config adds. */
  get eosTokenIds(): readonly number[] {
    return this.eos;
  }

  /** Models often stop on more ids than the tokenizer names (generation_config.json's eos_token_id list). */
  addEosTokenIds(ids: Iterable<number>): void {
    for (const id of ids) {
      this.checkId(id);
      if (!this.eos.includes(id)) this.eos.push(id);
    }
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids = this.hf.encode(text, { add_special_tokens: false }).ids;
    return options.addSpecialTokens === false ? ids : [...this.prefix, ...ids, ...this.suffix];
  }

  /**
   * Ids and token types for an encoder (BERT: `[CLS] text [SEP]`, or `[CLS] text [SEP] pair [SEP]` with the
   * pair typed 1), special tokens as the tokenizer adds them; truncated to `maxLength` when asked, else a
   * longer input is an InputTooLongError.
   */
  encodeTyped(text: string, options: EncodeTypedOptions = {}): TypedIds {
    const { pair, maxLength = Infinity, truncate = false, param = 'input' } = options;
    let a = this.encode(text, { addSpecialTokens: false });
    if (pair === undefined) {
      const specials = this.prefix.length + this.suffix.length;
      if (a.length + specials > maxLength) {
        if (!truncate || maxLength < specials) throw new InputTooLongError(a.length + specials, maxLength, param);
        a = a.slice(0, maxLength - specials);
      }
      const ids = [...this.prefix, ...a, ...this.suffix];
      return { ids, typeIds: new Array<number>(ids.length).fill(0) };
    }
    let b = this.encode(pair, { addSpecialTokens: false });
    const t = this.pairTemplate ?? (this.pairTemplate = probePairTemplate(this.hf));
    const specials = t.prefix.ids.length + t.middle.ids.length + t.suffix.ids.length;
    const total = a.length + b.length + specials;
    if (total > maxLength) {
      if (!truncate || maxLength < specials) throw new InputTooLongError(total, maxLength, param);
      const room = maxLength - specials;
      // One token at a time from the longer, the second on a tie: the shorter keeps what fits, then they meet at half.
      const keepA = Math.min(a.length, Math.max(room - b.length, Math.ceil(room / 2)));
      a = a.slice(0, keepA);
      b = b.slice(0, room - keepA);
    }
    return {
      ids: [...t.prefix.ids, ...a, ...t.middle.ids, ...b, ...t.suffix.ids],
      typeIds: [...t.prefix.typeIds, ...a.map(() => t.typeA), ...t.middle.typeIds, ...b.map(() => t.typeB), ...t.suffix.typeIds],
    };
  }

  /**
   * `encode` for long texts: encodes piece by piece, yielding to the event loop between pieces so a long
   * prompt cannot block the page and an abort is seen. Pieces are cut only where the ids come out the same as
   * encoding the whole text: before an added token, and for split-regex tokenizers (Qwen, Llama 3) after a
   * run of newlines before a non-space character.
   */
  async encodeInPieces(text: string, options: PieceEncodeOptions = {}): Promise<number[]> {
    const pieceChars = options.pieceChars ?? PIECE_CHARS;
    const ids: number[] = options.addSpecialTokens === false ? [] : [...this.prefix];
    let start = 0;
    while (start < text.length) {
      if (options.signal?.aborted) throw abortReason(options.signal);
      const end = text.length - start > pieceChars ? this.cutAfter(text, start + pieceChars) : text.length;
      for (const id of this.hf.encode(text.slice(start, end), { add_special_tokens: false }).ids) ids.push(id);
      start = end;
      if (start < text.length) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    if (options.addSpecialTokens !== false) for (const id of this.suffix) ids.push(id);
    return ids;
  }

  /** The first exact cut at or after `from`, or the text's end. */
  private cutAfter(text: string, from: number): number {
    if (this.cuts === null) return text.length;
    let cut = text.length;
    const { addedTokens, afterNewlines } = this.cuts;
    if (addedTokens) {
      addedTokens.lastIndex = from;
      const m = addedTokens.exec(text);
      if (m) cut = m.index;
    }
    if (afterNewlines) {
      const newline = /[\r\n](?=\S)/g;
      newline.lastIndex = Math.max(0, from - 1);
      const m = newline.exec(text);
      if (m && m.index + 1 < cut) cut = m.index + 1;
    }
    return Math.max(cut, from);
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    for (const id of ids) this.checkId(id);
    const kept = options.skipSpecialTokens ? ids.filter((id) => !this.specialTokenIds.has(id)) : [...ids];
    // The library throws on an empty list; the clean-up (" ." → ".") is lossy, so never round-trips or streams.
    return kept.length === 0 ? '' : this.hf.decode(kept, { clean_up_tokenization_spaces: false });
  }

  /** The bytes token `id` stands for (special tokens: their text as UTF-8), as logprobs and grammars see it. */
  tokenBytes(id: number): Uint8Array {
    this.checkId(id);
    return tokenBytes(this.hf.id_to_token(id)!, this.vocabType, this.specialTokenIds.has(id));
  }

  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  private checkId(id: number): void {
    // The library maps unknown ids to <unk> silently; a bad id here is a bug upstream (e.g. a padded logit).
    if (!Number.isInteger(id) || this.hf.id_to_token(id) === undefined) {
      throw new TokenizerError(`token id ${id} is not in the vocabulary (ids 0..${this.vocabSize - 1})`);
    }
  }
}

export function loadTokenizer(source: TokenizerSource): Tokenizer {
  const json = parseObject(source.tokenizerJson, 'tokenizer.json');
  const config = source.tokenizerConfig === undefined ? {} : parseObject(source.tokenizerConfig, 'tokenizer_config.json');
  const model = json.model;
  if (!isJsonObject(model) || typeof model.type !== 'string' || !('vocab' in model)) {
    throw new TokenizerError(
      'tokenizer.json has no "model" section with a type and a vocab; is it really a Hugging Face tokenizer.json ' +
        '(not tokenizer_config.json or a SentencePiece .model file)?',
    );
  }
  const addedTokens = json.added_tokens ?? [];
  if (!Array.isArray(addedTokens)) throw new TokenizerError('tokenizer.json: "added_tokens" is not a list');
  if (model.byte_fallback === true || usesByteFallbackDecoder(json.decoder)) {
    checkByteTokens(model.vocab, addedTokens);
  }

  let hf: HfTokenizer;
  try {
    hf = new HfTokenizer({ ...json, added_tokens: addedTokens }, config);
  } catch (e) {
    throw new TokenizerError(`tokenizer.json could not be loaded: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }

  /** The id of a special token that tokenizer_config.json names; BOS and EOS must exist, unk/pad may not. */
  const idOf = (field: string, required: boolean): number | null => {
    const content = specialTokenContent(config[field]);
    if (content === null) return null;
    const id = hf.token_to_id(content);
    if (id !== undefined) return id;
    if (required) throw new TokenizerError(`tokenizer_config.json: ${field} "${content}" is not in the vocabulary`);
    return null;
  };

  let { prefix, suffix } = postProcessorSpecials(hf);
  // Without a named bos_token, the token the post-processor puts first (Llama's <s>) is the BOS.
  const bos = idOf('bos_token', true) ?? prefix[0] ?? null;
  const eos = idOf('eos_token', true) ?? WELL_KNOWN_EOS.map((t) => hf.token_to_id(t)).find((id) => id !== undefined) ?? null;
  // An explicit add_bos_token/add_eos_token wins over the post-processor, as in transformers' LlamaTokenizerFast;
  // the post-processor may already add BOS, so add it only when missing.
  if (typeof config.add_bos_token === 'boolean' && bos !== null) {
    prefix = prefix.filter((id) => id !== bos);
    if (config.add_bos_token) prefix.unshift(bos);
  } else if (config.add_bos_token === true) {
    throw new TokenizerError('tokenizer_config.json sets add_bos_token but names no bos_token');
  }
  if (typeof config.add_eos_token === 'boolean' && eos !== null) {
    suffix = suffix.filter((id) => id !== eos);
    if (config.add_eos_token) suffix.push(eos);
  } else if (config.add_eos_token === true) {
    throw new TokenizerError('tokenizer_config.json sets add_eos_token but names no eos_token');
  }

  const special = new Set<number>();
  for (const [id, token] of hf.get_added_tokens_decoder()) if (token.special) special.add(id);
  for (const field of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
    const id = idOf(field, false);
    if (id !== null) special.add(id);
  }
  const additional = config.additional_special_tokens;
  if (Array.isArray(additional)) {
    for (const t of additional) {
      const id = hf.token_to_id(specialTokenContent(t) ?? '');
      if (id !== undefined) special.add(id);
    }
  }

  let vocabSize = 0;
  let maxTokenChars = 1;
  for (const [token, id] of hf.get_vocab(true)) {
    vocabSize = Math.max(vocabSize, id + 1);
    maxTokenChars = Math.max(maxTokenChars, token.length);
  }
  const mask = idOf('mask_token', false) ?? hf.token_to_id('[MASK]') ?? null;
  return new Tokenizer(hf, vocabSize, maxTokenChars, bos, eos === null ? [] : [eos], special, prefix, suffix, cutRules(json, addedTokens), vocabTypeOf(json.decoder), mask);
}

/**
 * Exact cut points, from what the library does: added tokens are split out of the text first, so a cut just
 * before one is exact, unless a token strips the whitespace around it (its neighbour could be in another
 * piece). The Qwen / Llama 3 split regex never makes a pre-token reach past a newline run into a following
 * non-space character, and BPE merges stay inside pre-tokens.
 */
function cutRules(json: JsonObject, addedTokens: unknown[]): CutRules | null {
  const contents: string[] = [];
  for (const t of addedTokens) {
    if (!isJsonObject(t) || typeof t.content !== 'string' || t.content === '') return null;
    if (t.lstrip === true || t.rstrip === true || t.single_word === true || t.normalized === true) return null;
    contents.push(t.content);
  }
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const addedRegex = contents.length > 0 ? new RegExp(contents.map(escape).join('|'), 'g') : null;
  return { addedTokens: addedRegex, afterNewlines: splitsLikeGpt4(json.pre_tokenizer) };
}

/** The split regexes of Qwen 2/3 (single digits) and Llama 3 (up to three digits), as tokenizer.json spells them. */
const GPT4_STYLE_SPLITS = new Set(
  ['\\p{N}', '\\p{N}{1,3}'].map(
    (digits) => `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|${digits}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
  ),
);

function splitsLikeGpt4(pre: unknown): boolean {
  if (!isJsonObject(pre)) return false;
  if (pre.type === 'Sequence' && Array.isArray(pre.pretokenizers)) return pre.pretokenizers.some(splitsLikeGpt4);
  const pattern = pre.pattern;
  return pre.type === 'Split' && pre.behavior === 'Isolated' && isJsonObject(pattern) && GPT4_STYLE_SPLITS.has(String(pattern.Regex));
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
}

/** Used only when tokenizer_config.json names no eos_token (or is absent). */
const WELL_KNOWN_EOS = ['</s>', '<|endoftext|>', '<|end_of_text|>', '<eos>'];

function parseObject(source: string | object, name: string): JsonObject {
  let value: unknown = source;
  if (typeof source === 'string') {
    try {
      value = JSON.parse(source);
    } catch (e) {
      throw new TokenizerError(`${name} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
  if (!isJsonObject(value)) throw new TokenizerError(`${name} must hold a JSON object`);
  return value;
}

/** tokenizer_config.json spells special tokens as a string or as {"content": ..., "__type": "AddedToken"}. */
function specialTokenContent(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (isJsonObject(value) && typeof value.content === 'string') return value.content;
  return null;
}

/**
 * The ids the post-processor puts around the text (e.g. Llama's TemplateProcessing adds <s> in front),
 * found by encoding a probe with and without special tokens.
 */
function postProcessorSpecials(hf: HfTokenizer): { prefix: number[]; suffix: number[] } {
  const bare = hf.encode('a', { add_special_tokens: false }).ids;
  const full = hf.encode('a', { add_special_tokens: true }).ids;
  for (let start = 0; start + bare.length <= full.length; start++) {
    if (bare.every((id, i) => full[start + i] === id)) {
      return { prefix: full.slice(0, start), suffix: full.slice(start + bare.length) };
    }
  }
  throw new TokenizerError('tokenizer.json: the post-processor changes the text tokens, not only adds special tokens around them');
}

/** The pair layout, found as postProcessorSpecials finds the single one: by encoding a probe pair. */
function probePairTemplate(hf: HfTokenizer): PairTemplate {
  const a = hf.encode('a', { add_special_tokens: false }).ids;
  const b = hf.encode('b', { add_special_tokens: false }).ids;
  const full = hf.encode('a', { text_pair: 'b', add_special_tokens: true, return_token_type_ids: true });
  const find = (ids: number[], from: number) => {
    for (let start = from; start + ids.length <= full.ids.length; start++) if (ids.every((id, i) => full.ids[start + i] === id)) return start;
    throw new TokenizerError('tokenizer.json: the post-processor changes the text tokens of a pair, not only adds special tokens around them');
  };
  const startA = find(a, 0);
  const startB = find(b, startA + a.length);
  const span = (from: number, to: number): TypedIds => ({ ids: full.ids.slice(from, to), typeIds: full.token_type_ids.slice(from, to) });
  return {
    prefix: span(0, startA),
    middle: span(startA + a.length, startB),
    suffix: span(startB + b.length, full.ids.length),
    typeA: full.token_type_ids[startA] ?? 0,
    typeB: full.token_type_ids[startB] ?? 0,
  };
}

function usesByteFallbackDecoder(decoder: unknown): boolean {
  if (!isJsonObject(decoder)) return false;
  if (decoder.type === 'ByteFallback') return true;
  return Array.isArray(decoder.decoders) && decoder.decoders.some(usesByteFallbackDecoder);
}

const BYTE_TOKEN = /^<0x[0-9A-Fa-f]{2}>$/;

/**
 * The byte decoder reads any 6-character "<0x..>" with parseInt, so "<0x-1>" would decode as byte 0xFF and
 * "<0x1G>" as 0x01: tokens that look like byte tokens but are not two hex digits mean a corrupt vocabulary.
 */
function checkByteTokens(vocab: unknown, addedTokens: unknown[]): void {
  // Loops, not push(...keys): a spread of a 262k-entry vocabulary (Gemma 3) overflows the stack.
  if (Array.isArray(vocab)) {
    // Unigram: [piece, score] pairs.
    for (const entry of vocab) if (Array.isArray(entry) && typeof entry[0] === 'string') checkByteToken(entry[0]);
  } else if (isJsonObject(vocab)) {
    for (const token in vocab) checkByteToken(token);
  }
  for (const t of addedTokens) if (isJsonObject(t) && typeof t.content === 'string') checkByteToken(t.content);
}

function checkByteToken(token: string): void {
  if (token.startsWith('<0x') && token.endsWith('>') && !BYTE_TOKEN.test(token)) {
    throw new TokenizerError(
      `tokenizer.json: token "${token}" looks like a byte-fallback token but is not <0xHH> with two hex digits; ` +
        'the vocabulary is corrupt (re-download tokenizer.json)',
    );
  }
}
