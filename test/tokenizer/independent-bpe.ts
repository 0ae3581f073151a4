/**
 * A small BPE encoder written for tests from the published algorithms, reading only tokenizer.json's raw
 * vocabulary, merges and added tokens: the independent source of expected ids for the real tokenizers.
 * Byte-level BPE (GPT-2 style: Qwen, Llama 3) pre-splits with the tokenizer's regex, maps UTF-8 bytes to
 * printable characters and merges by rank; SentencePiece-style BPE (Gemma) turns spaces into "▁", merges the
 * whole text, and spells characters missing from the vocabulary as their UTF-8 bytes (<0xHH>).
 */
export interface RawTokenizerJson {
  model: { vocab: Record<string, number>; merges: Array<string | [string, string]>; ignore_merges?: boolean; byte_fallback?: boolean };
  normalizer: { type: string } | null;
  added_tokens: Array<{ id: number; content: string }>;
}

export type Style = 'byte-level' | 'sentencepiece';

/**
 * The Llama 3 / Qwen split regex, with Python's `(?i:...)` spelled out for JS (which lacks inline flags).
 * `digits` is the run length of number pieces: 1 for Qwen, 3 for Llama 3.
 */
function splitRegex(digits: number): RegExp {
  const contractions = "'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])";
  return new RegExp(
    `${contractions}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,${digits}}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
    'gu',
  );
}

/** GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest move to U+0100 and up. */
function byteAlphabet(): string[] {
  const table: string[] = [];
  let shift = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[b] = String.fromCodePoint(printable ? b : 256 + shift++);
  }
  return table;
}

export class IndependentBpe {
  private readonly vocab: Map<string, number>;
  private readonly ranks = new Map<string, number>();
  private readonly added: Map<string, number>;
  private readonly bytes = byteAlphabet();
  private readonly split: RegExp;

  constructor(
    private readonly json: RawTokenizerJson,
    private readonly style: Style,
    digits = 1,
  ) {
    this.vocab = new Map(Object.entries(json.model.vocab));
    json.model.merges.forEach((m, rank) => {
      const [a, b] = typeof m === 'string' ? m.split(' ') : m;
      this.ranks.set(`${a}\u0000${b}`, rank);
    });
    this.added = new Map(json.added_tokens.map((t) => [t.content, t.id]));
    this.split = splitRegex(digits);
  }

  /** Text to ids: added tokens split out first (leftmost-longest), the rest pre-split and merged. */
  encode(text: string): number[] {
    const ids: number[] = [];
    let plain = '';
    for (let i = 0; i < text.length; ) {
      const token = this.addedAt(text, i);
      if (token === undefined) {
        plain += text[i++];
        continue;
      }
      ids.push(...this.encodePlain(plain), this.added.get(token) as number);
      plain = '';
      i += token.length;
    }
    ids.push(...this.encodePlain(plain));
    return ids;
  }

  private addedAt(text: string, at: number): string | undefined {
    let best: string | undefined;
    for (const content of this.added.keys()) {
      if ((best === undefined || content.length > best.length) && text.startsWith(content, at)) best = content;
    }
    return best;
  }

  private encodePlain(text: string): number[] {
    if (text === '') return [];
    if (this.style === 'sentencepiece') return this.merge(Array.from(text.replaceAll(' ', '▁')), true);
    const out: number[] = [];
    const normalized = this.json.normalizer?.type === 'NFC' ? text.normalize('NFC') : text;
    for (const [piece] of normalized.matchAll(this.split)) {
      const symbols = Array.from(new TextEncoder().encode(piece), (b) => this.bytes[b]);
      const whole = symbols.join('');
      if (this.json.model.ignore_merges && this.vocab.has(whole)) out.push(this.vocab.get(whole) as number);
      else out.push(...this.merge(symbols, false));
    }
    return out;
  }

  /** Merges the lowest-ranked adjacent pair (leftmost on ties) until none is in the merge list. */
  private merge(initial: string[], byteFallback: boolean): number[] {
    const symbols = [...initial];
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const rank = this.ranks.get(`${symbols[i]}\u0000${symbols[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = i;
        }
      }
      if (best < 0) break;
      symbols.splice(best, 2, symbols[best] + symbols[best + 1]);
    }
    const ids: number[] = [];
    for (const s of symbols) {
      const id = this.vocab.get(s);
      if (id !== undefined) ids.push(id);
      else if (byteFallback) {
        for (const b of new TextEncoder().encode(s)) ids.push(this.vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`) as number);
      } else throw new Error(`no vocabulary entry for ${JSON.stringify(s)}`);
    }
    return ids;
  }
}
