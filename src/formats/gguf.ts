/**
 * A small GGUF (v3) writer: enough for gguf-export.ts to hand llama.cpp (wllama, the WASM backend and the
 * peer benchmark) the same weights, as stored or quantized to Q8_0/Q4_0.
 *
 * File layout (little-endian): "GGUF", u32 version = 3, u64 tensor count, u64 metadata count, the metadata
 * key/values, the tensor infos (name, u32 n_dims, u64 dims with ne[0] innermost, u32 type, u64 offset into the
 * data section), padding to general.alignment, then the data section, each tensor aligned to the alignment.
 */
import { f32ToF16Bits } from '../gpu/f16';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** gguf_type: the metadata value types. */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** ggml_type: the tensor element types written here. */
export const GgmlType = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8 } as const;
export type GgmlTypeId = (typeof GgmlType)[keyof typeof GgmlType];

export type GgufScalar =
  | { type: 'u32'; value: number }
  | { type: 'i32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string };

export type GgufValue =
  | GgufScalar
  | { type: 'array'; itemType: 'u32' | 'i32' | 'f32'; value: ArrayLike<number> }
  | { type: 'array'; itemType: 'string'; value: readonly string[] };

export interface GgufTensor<Data extends Uint8Array | Blob = Uint8Array> {
  name: string;
  /** Row-major shape, outermost first (as in safetensors / PyTorch); written reversed (ne[0] innermost). */
  shape: readonly number[];
  type: GgmlTypeId;
  /**
   * The elements' bytes, little-endian: F32 → 4 bytes each, F16 → 2; Q8_0/Q4_0: blocks of 32 along a row (see
   * quantizeQ8_0/Q4_0). A Blob keeps a large model's bytes out of the JS heap while the file is assembled.
   */
  data: Data;
}

export interface GgufContents<Data extends Uint8Array | Blob = Uint8Array> {
  /** In order; general.alignment is added (as u32 32) unless present. */
  metadata: ReadonlyArray<readonly [string, GgufValue]>;
  tensors: readonly GgufTensor<Data>[];
}

export class GgufError extends Error {
  override name = 'GgufError';
}

export const u32Value = (value: number): GgufValue => ({ type: 'u32', value });
export const f32Value = (value: number): GgufValue => ({ type: 'f32', value });
export const stringValue = (value: string): GgufValue => ({ type: 'string', value });

const SCALAR_TYPE = { u32: GgufValueType.UINT32, i32: GgufValueType.INT32, f32: GgufValueType.FLOAT32, bool: GgufValueType.BOOL, string: GgufValueType.STRING } as const;

/** Elements per block and bytes per block of each type (F32 and F16: blocks of one element). */
export const GGML_BLOCK: Record<GgmlTypeId, { elements: number; bytes: number }> = {
  [GgmlType.F32]: { elements: 1, bytes: 4 },
  [GgmlType.F16]: { elements: 1, bytes: 2 },
  // An f16 scale, then 16 bytes of 4-bit values (elements 0..15 in the low nibbles, 16..31 in the high ones).
  [GgmlType.Q4_0]: { elements: 32, bytes: 18 },
  // An f16 scale, then 32 int8 values.
  [GgmlType.Q8_0]: { elements: 32, bytes: 34 },
};

/** Bytes of a tensor of `elements` elements whose rows are `cols` long (blocks never straddle rows). */
export function ggmlTensorBytes(type: GgmlTypeId, elements: number, cols: number): number {
  const { elements: perBlock, bytes } = GGML_BLOCK[type];
  if (cols % perBlock !== 0) throw new GgufError(`type ${type} needs rows that are a multiple of ${perBlock} elements, got ${cols}`);
  return (elements / perBlock) * bytes;
}

/** llama.cpp's quantize_row_q8_0_ref: per block of 32, scale = max|x| / 127, values round(x / scale). */
export function quantizeQ8_0(values: Float32Array): Uint8Array {
  if (values.length % 32 !== 0) throw new GgufError(`Q8_0 quantizes blocks of 32, got ${values.length} values`);
  const out = new Uint8Array((values.length / 32) * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < values.length / 32; b++) {
    const x = values.subarray(b * 32, b * 32 + 32);
    let amax = 0;
    for (const v of x) amax = Math.max(amax, Math.abs(v));
    // In f32 as llama.cpp computes, rounding halves away from zero as roundf does.
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    view.setUint16(b * 34, f32ToF16Bits(d), true);
    for (let j = 0; j < 32; j++) {
      const v = Math.fround(x[j] * id);
      view.setInt8(b * 34 + 2 + j, Math.sign(v) * Math.round(Math.abs(v)));
    }
  }
  return out;
}

/**
 * llama.cpp's quantize_row_q4_0_ref: per block of 32, the value of largest magnitude maps to -8, scale =
 * that value / -8, each value to min(15, trunc(x / scale + 8.5)).
 */
export function quantizeQ4_0(values: Float32Array): Uint8Array {
  if (values.length % 32 !== 0) throw new GgufError(`Q4_0 quantizes blocks of 32, got ${values.length} values`);
  const out = new Uint8Array((values.length / 32) * 18);
  const view = new DataView(out.buffer);
  for (let b = 0; b < values.length / 32; b++) {
    const x = values.subarray(b * 32, b * 32 + 32);
    let amax = 0;
    let max = 0;
    for (const v of x) {
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = Math.fround(max / -8);
    const id = d ? Math.fround(1 / d) : 0;
    view.setUint16(b * 18, f32ToF16Bits(d), true);
    const q = (v: number) => Math.min(15, Math.trunc(Math.fround(Math.fround(v * id) + 8.5)));
    for (let j = 0; j < 16; j++) out[b * 18 + 2 + j] = q(x[j]) | (q(x[j + 16]) << 4);
  }
  return out;
}

/** A growable little-endian byte writer. */
class Writer {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private readonly enc = new TextEncoder();

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.reserve(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }
  f32(v: number): void {
    this.reserve(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  u64(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new GgufError(`u64 out of range: ${v}`);
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  string(s: string): void {
    const b = this.enc.encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  padTo(alignment: number): void {
    const pad = (alignment - (this.length % alignment)) % alignment;
    this.reserve(pad);
    this.buf.fill(0, this.length, this.length + pad);
    this.length += pad;
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

function writeScalar(w: Writer, type: 'u32' | 'i32' | 'f32', v: number): void {
  if (type === 'u32') w.u32(v);
  else if (type === 'i32') w.i32(v);
  else w.f32(v);
}

function writeValue(w: Writer, key: string, v: GgufValue): void {
  if (v.type === 'array') {
    w.u32(GgufValueType.ARRAY);
    w.u32(SCALAR_TYPE[v.itemType]);
    w.u64(v.value.length);
    if (v.itemType === 'string') for (const s of v.value) w.string(s);
    else for (let i = 0; i < v.value.length; i++) writeScalar(w, v.itemType, v.value[i]);
    return;
  }
  w.u32(SCALAR_TYPE[v.type]);
  switch (v.type) {
    case 'bool':
      w.u8(v.value ? 1 : 0);
      break;
    case 'string':
      w.string(v.value);
      break;
    default:
      if (typeof v.value !== 'number' || !Number.isFinite(v.value)) throw new GgufError(`metadata ${key}: not a finite number`);
      writeScalar(w, v.type, v.value);
  }
}

const byteLength = (data: Uint8Array | Blob): number => (data instanceof Blob ? data.size : data.byteLength);

/** The header (metadata and tensor infos, padded to the alignment) and each tensor's padding after its data. */
function ggufLayout(contents: GgufContents<Uint8Array | Blob>): { header: Uint8Array; padding: number[] } {
  const metadata = [...contents.metadata];
  const alignEntry = metadata.find(([k]) => k === 'general.alignment');
  if (!alignEntry) metadata.push(['general.alignment', u32Value(GGUF_DEFAULT_ALIGNMENT)]);
  const alignment = alignEntry && alignEntry[1].type === 'u32' ? alignEntry[1].value : GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment % 8 !== 0) throw new GgufError(`general.alignment must be a positive multiple of 8 (u32), got ${alignment}`);

  const names = new Set<string>();
  const offsets: number[] = [];
  const padding: number[] = [];
  let offset = 0;
  for (const t of contents.tensors) {
    if (names.has(t.name)) throw new GgufError(`duplicate tensor ${t.name}`);
    names.add(t.name);
    if (t.shape.length < 1 || t.shape.length > 4) throw new GgufError(`${t.name}: GGUF tensors have 1 to 4 dims, got ${t.shape.length}`);
    const n = t.shape.reduce((a, b) => a * b, 1);
    const bytes = byteLength(t.data);
    if (bytes !== ggmlTensorBytes(t.type, n, t.shape[t.shape.length - 1])) throw new GgufError(`${t.name}: ${bytes} bytes for ${n} elements of type ${t.type}`);
    offsets.push(offset);
    offset += bytes;
    padding.push((alignment - (offset % alignment)) % alignment);
    offset += padding[padding.length - 1];
  }

  const w = new Writer();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(contents.tensors.length);
  w.u64(metadata.length);
  for (const [key, value] of metadata) {
    w.string(key);
    writeValue(w, key, value);
  }
  contents.tensors.forEach((t, i) => {
    w.string(t.name);
    w.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) w.u64(t.shape[d]);
    w.u32(t.type);
    w.u64(offsets[i]);
  });
  w.padTo(alignment);
  return { header: w.result(), padding };
}

/**
 * Serializes a GGUF v3 file as a Blob made of the tensors' own parts: nothing is copied into one JS buffer, so a
 * model's bytes are held once (by the Blobs) rather than again by a growing writer.
 */
export function writeGgufBlob(contents: GgufContents<Uint8Array | Blob>): Blob {
  const { header, padding } = ggufLayout(contents);
  const zeros = new Uint8Array(Math.max(0, ...padding));
  const parts: BlobPart[] = [header as Uint8Array<ArrayBuffer>];
  contents.tensors.forEach((t, i) => parts.push(t.data as Uint8Array<ArrayBuffer> | Blob, zeros.subarray(0, padding[i])));
  return new Blob(parts);
}
