/**
 * The bytes each token stands for, from its vocabulary string: what logprobs report as `bytes` and what a
 * grammar engine needs to match tokens against text. Three spellings exist in Hugging Face vocabularies:
 * byte-level BPE (GPT-2, Llama 3, Qwen) writes every byte as one printable character; SentencePiece with byte
 * fallback (Llama 2) writes text as UTF-8 with ▁ for a space and single bytes as <0xHH>; anything else is
 * taken as raw UTF-8.
 */
import { isJsonObject } from '../util/json';

export type VocabType = 'byte_level' | 'byte_fallback' | 'raw';

/** The spelling a tokenizer.json's decoder implies. */
export function vocabTypeOf(decoder: unknown): VocabType {
  const types = new Set<string>();
  const visit = (d: unknown): void => {
    if (!isJsonObject(d)) return;
    if (typeof d.type === 'string') types.add(d.type);
    if (Array.isArray(d.decoders)) d.decoders.forEach(visit);
  };
  visit(decoder);
  if (types.has('ByteLevel')) return 'byte_level';
  if (types.has('ByteFallback')) return 'byte_fallback';
  return 'raw';
}

/** GPT-2's byte → character table, inverted: printable Latin-1 bytes stand for themselves, the rest from U+0100 on. */
let byteLevelTable: Map<number, number> | undefined;
function byteOfChar(code: number): number | undefined {
  if (!byteLevelTable) {
    byteLevelTable = new Map();
    let shifted = 0;
    for (let b = 0; b < 256; b++) {
      const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
      byteLevelTable.set(printable ? b : 256 + shifted++, b);
    }
  }
  return byteLevelTable.get(code);
}

const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;
const utf8 = new TextEncoder();

/**
 * The bytes of one vocabulary string. Special/added tokens (`special`) are their text as UTF-8, as are
 * strings a byte-level vocabulary cannot spell (added tokens in plain text).
 */
export function tokenBytes(token: string, type: VocabType, special = false): Uint8Array {
  if (special || type === 'raw') return utf8.encode(token);
  if (type === 'byte_fallback') {
    const byte = BYTE_TOKEN.exec(token);
    return byte ? Uint8Array.of(parseInt(byte[1], 16)) : utf8.encode(token.replaceAll('\u2581', ' '));
  }
  const bytes = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const b = byteOfChar(token.charCodeAt(i));
    if (b === undefined) return utf8.encode(token);
    bytes[i] = b;
  }
  return bytes;
}
