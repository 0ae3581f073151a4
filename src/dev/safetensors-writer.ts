/**
 * A safetensors writer, for tests and benchmarks (random-weight checkpoints): the runtime only reads. It
 * refuses, with the reader's SafetensorsError codes, anything that would make a file the reader rejects.
 */
import { SafetensorsError, quote, type SafetensorsErrorCode } from '../formats/errors';
import { DTYPE_BYTES, formatShape, hasLoneSurrogate, isDtype, MAX_HEADER_BYTES, METADATA_KEY, type Dtype } from '../formats/safetensors';

export interface TensorToWrite {
  name: string;
  dtype: Dtype;
  shape: readonly number[];
  /** The raw little-endian elements: F16 and BF16 as Uint16Array bits, BOOL as bytes. */
  data: ArrayBufferView;
}

/**
 * Writes a safetensors file the way the Python library lays it out: `__metadata__` first, the header padded
 * with spaces to a multiple of 8 bytes, data in the order given (offsets are not realigned, so readers may
 * need to copy unaligned tensors; put wide dtypes first to avoid that). Throws SafetensorsError on input
 * that would make an invalid file.
 */
export function writeSafetensors(tensors: Iterable<TensorToWrite>, metadata?: Record<string, string>): Uint8Array {
  const parts: string[] = [];
  const seen = new Set<string>();
  if (metadata !== undefined) {
    const keys = Object.keys(metadata);
    for (const k of keys) {
      const v: unknown = metadata[k];
      if (typeof v !== 'string' || hasLoneSurrogate(k) || hasLoneSurrogate(v)) {
        throw new SafetensorsError(
          'bad-metadata',
          `__metadata__[${quote(k)}] must be a well-formed string.`,
          { file: 'writer' },
        );
      }
    }
    // Built by hand: JSON.stringify would move integer-like keys ("0", "12") to the front.
    parts.push(`"${METADATA_KEY}":{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`);
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    const fail = (code: SafetensorsErrorCode, detail: string) =>
      new SafetensorsError(code, `tensor ${quote(t.name)}: ${detail}`, { file: 'writer', tensor: t.name });
    if (t.name === METADATA_KEY || hasLoneSurrogate(t.name)) throw fail('bad-entry', 'not a valid tensor name.');
    if (seen.has(t.name)) throw fail('duplicate-name', 'given twice.');
    seen.add(t.name);
    if (!isDtype(t.dtype)) throw fail('unknown-dtype', `unknown dtype ${quote(String(t.dtype))}.`);
    let count = 1;
    for (const d of t.shape) {
      if (!Number.isSafeInteger(d) || d < 0) {
        throw fail('bad-entry', `shape ${formatShape(t.shape)} must hold non-negative integers.`);
      }
      count *= d;
      if (!Number.isSafeInteger(count)) throw fail('unsafe-size', 'the element count is beyond 2^53 - 1.');
    }
    const bytes = count * DTYPE_BYTES[t.dtype];
    if (bytes !== t.data.byteLength) {
      throw fail(
        'size-mismatch',
        `${t.dtype} ${formatShape(t.shape)} needs ${bytes} bytes, data has ${t.data.byteLength}.`,
      );
    }
    parts.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + bytes}]}`);
    chunks.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    offset += bytes;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLength = Math.ceil(json.byteLength / 8) * 8;
  if (headerLength > MAX_HEADER_BYTES) {
    throw new SafetensorsError('header-too-large', `the header would be ${headerLength} bytes.`, { file: 'writer' });
  }
  const out = new Uint8Array(8 + headerLength + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerLength, true);
  view.setUint32(4, 0, true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.byteLength, 8 + headerLength);
  let at = 8 + headerLength;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
