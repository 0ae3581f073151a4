/**
 * A strict safetensors reader, following the reference Rust implementation:
 *
 *   [8 bytes: N, u64 little-endian][N bytes: JSON header, padded with spaces][data area]
 *
 * The header maps tensor names to `{ dtype, shape, data_offsets: [begin, end] }` (offsets relative to the data
 * area) plus an optional `__metadata__` string→string map. We reject, with a typed SafetensorsError, anything
 * the reference rejects and a little more: duplicate keys (JSON.parse would silently keep the last), fields
 * other than the three, numbers written with a fraction/exponent/sign, and offsets that do not tile the data
 * area exactly. Every size is checked to stay a safe integer, since JS numbers are doubles.
 *
 * Reading is per tensor through a ByteSource (memory, Blob, HTTP Range), so models larger than one
 * ArrayBuffer stream; sharded models (`model.safetensors.index.json`) expose the same interface.
 */
import { SafetensorsError, describeValue, quote, type SafetensorsErrorCode } from './errors';
import type { ByteSource } from './sources';

export { SafetensorsError } from './errors';
export type { SafetensorsErrorCode } from './errors';

/** The reference implementation's limit; larger headers are refused before anything is allocated. */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * Dtypes we read, with their element sizes. Anything else (F8_*, F6_*, F4, C64, ...) fails with
 * 'unknown-dtype': those need dequantization code this runtime does not have.
 */
export const DTYPE_BYTES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
} as const;

export type Dtype = keyof typeof DTYPE_BYTES;

export function isDtype(s: string): s is Dtype {
  // hasOwn, not `in`: a dtype named "toString" or "__proto__" must not pass.
  return Object.hasOwn(DTYPE_BYTES, s);
}

/** What `readTensor` returns per dtype. F16 stays raw bits (the GPU takes them as is); BF16 widens to f32. */
export interface TensorDataByDtype {
  F64: Float64Array;
  F32: Float32Array;
  F16: Uint16Array;
  BF16: Float32Array;
  I64: BigInt64Array;
  I32: Int32Array;
  I16: Int16Array;
  I8: Int8Array;
  U64: BigUint64Array;
  U32: Uint32Array;
  U16: Uint16Array;
  U8: Uint8Array;
  /** One byte per element, 0 or 1 as written (not validated). */
  BOOL: Uint8Array;
}

export type TensorData = TensorDataByDtype[Dtype];

export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Absolute offset of the first byte in the file. */
  byteOffset: number;
  byteLength: number;
  /** The file holding the tensor (the source's name, or the shard's file name). */
  file: string;
}

export interface LoadedTensor {
  info: TensorInfo;
  /**
   * The elements. For in-memory sources this may be a view into the source's buffer when the tensor is
   * aligned: treat it as read-only.
   */
  data: TensorData;
}

export interface SafetensorsHeader {
  /** In file order (by offset). */
  tensors: Map<string, TensorInfo>;
  /** `__metadata__`, or empty. A null-prototype object, so a key like "__proto__" is just a key. */
  metadata: Record<string, string>;
  /** Absolute offset of the data area: 8 + header length. */
  dataOffset: number;
}

/** What a single file and a sharded model have in common: look tensors up, read them one at a time. */
export interface TensorSource {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** One tensor's bytes, read from the source on demand (only that tensor's range). */
  readTensorBytes(name: string): Promise<Uint8Array>;
  /**
   * `length` bytes of one tensor's data from byte `offset` within it (a slice of a tensor too large to hold
   * whole); a RangeError when the range is outside the tensor.
   */
  readTensorRange(name: string, offset: number, length: number): Promise<Uint8Array>;
  /** One tensor decoded to a typed array (see TensorDataByDtype). */
  readTensor(name: string): Promise<LoadedTensor>;
}

export interface SafetensorsFile extends TensorSource {
  readonly name: string;
  readonly size: number;
  readonly metadata: Record<string, string>;
  readonly dataOffset: number;
  readonly source: ByteSource;
}

// ---------------------------------------------------------------------------------------------------------
// Header

/** Git LFS pointer files are about 130 bytes; the spec caps them at 1024. */
const MAX_LFS_POINTER_BYTES = 1024;

/**
 * The header length N from the file's first 8 bytes, checked against the limit and the file size before
 * anything of size N is allocated. The u64 is read as two u32 words so no value is ever rounded.
 */
export function readHeaderLength(prefix: Uint8Array, fileSize: number, file?: string): number {
  checkFileSize(fileSize);
  if (fileSize < 8 || prefix.byteLength < 8) {
    throw new SafetensorsError(
      'too-small',
      `the file has ${Math.min(fileSize, prefix.byteLength)} bytes, fewer than the 8-byte header length.`,
      { file },
    );
  }
  // A pointer file starts "version https://git-lfs.github.com/spec/v1"; its first 8 bytes would read as a huge length.
  if (fileSize <= MAX_LFS_POINTER_BYTES && new TextDecoder().decode(prefix.subarray(0, 8)) === 'version ') {
    throw new SafetensorsError('lfs-pointer', `the file is a ${fileSize}-byte Git LFS pointer, not the weights.`, { file });
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  if (hi !== 0 || lo > MAX_HEADER_BYTES) {
    const n = hi !== 0 ? ((BigInt(hi) << 32n) | BigInt(lo)).toString() : String(lo);
    throw new SafetensorsError(
      'header-too-large',
      `the header length is ${n} bytes, over the limit of ${MAX_HEADER_BYTES}.`,
      { file },
    );
  }
  if (8 + lo > fileSize) {
    throw new SafetensorsError(
      'header-out-of-bounds',
      `the header claims ${lo} bytes but the file has only ${fileSize - 8} after the length.`,
      { file },
    );
  }
  return lo;
}

function checkFileSize(fileSize: number): void {
  if (!Number.isSafeInteger(fileSize) || fileSize < 0) {
    throw new RangeError(`file size must be a non-negative safe integer, got ${fileSize}`);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }); // keep a BOM so it fails the "{" check

/**
 * Parses and validates a header. `headerBytes` are the N bytes after the 8-byte length; `fileSize` is the
 * whole file's size (to check the data area). Throws SafetensorsError naming `file` on any violation.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, fileSize: number, file?: string): SafetensorsHeader {
  checkFileSize(fileSize);
  const err = (code: SafetensorsErrorCode, detail: string, tensor?: string) =>
    new SafetensorsError(code, detail, { file, tensor });
  const n = headerBytes.byteLength;
  if (n > MAX_HEADER_BYTES) {
    throw err('header-too-large', `the header is ${n} bytes, over the limit of ${MAX_HEADER_BYTES}.`);
  }
  const dataOffset = 8 + n;
  if (dataOffset > fileSize) {
    throw err(
      'header-out-of-bounds',
      `the header claims ${n} bytes but the file has only ${Math.max(0, fileSize - 8)} after the length.`,
    );
  }

  let text: string;
  try {
    text = utf8.decode(headerBytes);
  } catch {
    throw err('header-not-utf8', 'the header is not valid UTF-8.');
  }
  if (text.charCodeAt(0) !== 0x7b) {
    throw err(
      'header-bad-start',
      `the header starts with ${text.length ? quote(text.slice(0, 16)) : 'nothing'}, not "{".`,
    );
  }
  // Only spaces may follow the JSON; JSON.parse would also accept \t \n \r, so trim spaces and let it decide,
  // then insist the text ends with the object's "}".
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0x20) end--;
  const body = end === text.length ? text : text.slice(0, end);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (e) {
    const objectEnd = findObjectEnd(body);
    if (objectEnd > 0 && objectEnd < body.length && parsesAsJson(body.slice(0, objectEnd))) {
      throw err(
        'bad-padding',
        `the header has ${body.length - objectEnd} characters after the JSON that are not spaces (0x20).`,
      );
    }
    throw err(
      'header-not-json',
      `the header is not valid JSON (${e instanceof Error ? e.message.slice(0, 200) : 'parse error'}).`,
    );
  }
  if (body.charCodeAt(body.length - 1) !== 0x7d) {
    throw err('bad-padding', 'the header is padded with whitespace other than spaces (0x20).');
  }
  const root = parsed as Record<string, unknown>; // starts with "{" and parsed: an object

  const scan = scanJson(body);
  if (scan.loneSurrogate) {
    throw err(
      'header-not-json',
      'the header escapes a lone UTF-16 surrogate (\\uD800-\\uDFFF), which is not valid Unicode.',
    );
  }
  if (scan.duplicate) {
    const { parent, key } = scan.duplicate;
    if (parent === undefined) {
      throw key === METADATA_KEY
        ? err('bad-metadata', '"__metadata__" appears twice in the header.')
        : err('duplicate-name', `tensor ${quote(key)} appears twice in the header.`, key);
    }
    throw parent === METADATA_KEY
      ? err('bad-metadata', `__metadata__ has the key ${quote(key)} twice.`)
      : err('bad-entry', `tensor ${quote(parent)} has the field ${quote(key)} twice.`, parent);
  }

  let metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  const entries: Entry[] = [];
  for (const name of Object.keys(root)) {
    const value = root[name];
    if (name === METADATA_KEY) metadata = validateMetadata(value, err);
    else entries.push(validateEntry(name, value, scan.nonInteger.has(name), err));
  }

  // The offsets must tile the data area from 0 with no gap and no overlap (zero-size tensors sit at begin == end).
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dataLength = fileSize - dataOffset;
  let expected = 0;
  let previous: Entry | undefined;
  for (const e of entries) {
    if (e.begin !== expected) {
      if (!previous) {
        throw err(
          'bad-offsets',
          `the first tensor ${quote(e.name)} starts at byte ${e.begin} of the data area, not 0.`,
          e.name,
        );
      }
      throw e.begin < expected
        ? err(
            'bad-offsets',
            `tensor ${quote(e.name)} [${e.begin}, ${e.end}) overlaps tensor ${quote(previous.name)} [${previous.begin}, ${previous.end}).`,
            e.name,
          )
        : err(
            'bad-offsets',
            `there is a gap of ${e.begin - expected} bytes between tensor ${quote(previous.name)} (ends at ${expected}) and tensor ${quote(e.name)} (starts at ${e.begin}).`,
            e.name,
          );
    }
    expected = e.end;
    previous = e;
  }
  if (expected > dataLength) {
    throw err(
      'truncated',
      `the tensors need ${expected} bytes of data but the file has only ${dataLength} after the header${previous ? ` (tensor ${quote(previous.name)} runs past the end)` : ''}.`,
      previous?.name,
    );
  }
  if (expected < dataLength) {
    throw err(
      'bad-offsets',
      `the file has ${dataLength - expected} bytes after the last tensor that no tensor covers.`,
    );
  }

  const tensors = new Map<string, TensorInfo>();
  for (const e of entries) {
    tensors.set(e.name, {
      name: e.name,
      dtype: e.dtype,
      shape: e.shape,
      byteOffset: dataOffset + e.begin,
      byteLength: e.end - e.begin,
      file: file ?? 'safetensors',
    });
  }
  return { tensors, metadata, dataOffset };
}

export const METADATA_KEY = '__metadata__';
const ENTRY_FIELDS = ['dtype', 'shape', 'data_offsets'] as const;

interface Entry {
  name: string;
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
}

type MakeError = (code: SafetensorsErrorCode, detail: string, tensor?: string) => SafetensorsError;

/** A shape for messages, cut short: a hostile header can hold a million dimensions. */
export function formatShape(shape: readonly number[]): string {
  return shape.length <= 8 ? `[${shape.join(', ')}]` : `[${shape.slice(0, 8).join(', ')}, … (${shape.length} dims)]`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function validateMetadata(value: unknown, err: MakeError): Record<string, string> {
  if (!isPlainObject(value)) {
    throw err(
      'bad-metadata',
      `__metadata__ must be an object mapping strings to strings, got ${describeValue(value)}.`,
    );
  }
  const out = Object.create(null) as Record<string, string>;
  for (const key of Object.keys(value)) {
    const v = value[key];
    if (typeof v !== 'string') {
      throw err('bad-metadata', `__metadata__[${quote(key)}] must be a string, got ${describeValue(v)}.`);
    }
    out[key] = v;
  }
  return out;
}

/** `value` as an array of non-negative safe integers, or a SafetensorsError saying what is wrong. */
function checkIntegers(value: unknown, what: string, name: string, err: MakeError): number[] {
  if (!Array.isArray(value)) {
    throw err(
      'bad-entry',
      `tensor ${quote(name)}: ${what} must be an array of integers, got ${describeValue(value)}.`,
      name,
    );
  }
  for (let i = 0; i < value.length; i++) {
    const d: unknown = value[i];
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) {
      throw err(
        'bad-entry',
        `tensor ${quote(name)}: ${what}[${i}] must be a non-negative integer, got ${describeValue(d)}.`,
        name,
      );
    }
    if (!Number.isSafeInteger(d)) {
      throw err('unsafe-size', `tensor ${quote(name)}: ${what}[${i}] = ${d} is beyond 2^53 - 1.`, name);
    }
  }
  return value as number[];
}

function validateEntry(name: string, value: unknown, hasNonIntegerLiteral: boolean, err: MakeError): Entry {
  if (!isPlainObject(value)) {
    throw err(
      'bad-entry',
      `tensor ${quote(name)} must be an object { dtype, shape, data_offsets }, got ${describeValue(value)}.`,
      name,
    );
  }
  for (const key of Object.keys(value)) {
    if (!(ENTRY_FIELDS as readonly string[]).includes(key)) {
      throw err(
        'bad-entry',
        `tensor ${quote(name)} has an unexpected field ${quote(key)} (only dtype, shape, data_offsets are allowed).`,
        name,
      );
    }
  }
  for (const key of ENTRY_FIELDS) {
    if (!Object.hasOwn(value, key)) throw err('bad-entry', `tensor ${quote(name)} lacks the field "${key}".`, name);
  }
  const dtype = value.dtype;
  if (typeof dtype !== 'string') {
    throw err('bad-entry', `tensor ${quote(name)}: dtype must be a string, got ${describeValue(dtype)}.`, name);
  }
  if (!isDtype(dtype)) {
    throw err(
      'unknown-dtype',
      `tensor ${quote(name)} has dtype ${quote(dtype)}, which this runtime does not read (supported: ${Object.keys(DTYPE_BYTES).join(', ')}).`,
      name,
    );
  }
  const shape = checkIntegers(value.shape, 'shape', name, err);
  const offsets = checkIntegers(value.data_offsets, 'data_offsets', name, err);
  if (offsets.length !== 2) {
    throw err(
      'bad-entry',
      `tensor ${quote(name)}: data_offsets must be [begin, end], got ${offsets.length} numbers.`,
      name,
    );
  }
  if (hasNonIntegerLiteral) {
    // JSON.parse reads 1.0, 1e0 and -0 as integers; the reference (serde, usize) does not.
    throw err(
      'bad-entry',
      `tensor ${quote(name)}: shape and data_offsets must be plain integers (no fraction, exponent or sign).`,
      name,
    );
  }
  const [begin, end] = offsets;
  if (end < begin) throw err('bad-offsets', `tensor ${quote(name)} ends (${end}) before it begins (${begin}).`, name);
  let count = 1;
  for (const d of shape) {
    count *= d;
    if (!Number.isSafeInteger(count)) {
      throw err(
        'unsafe-size',
        `tensor ${quote(name)}: the element count of shape ${formatShape(shape)} is beyond 2^53 - 1.`,
        name,
      );
    }
  }
  const bytes = count * DTYPE_BYTES[dtype];
  if (!Number.isSafeInteger(bytes)) {
    throw err('unsafe-size', `tensor ${quote(name)}: ${count} elements of ${dtype} is beyond 2^53 - 1 bytes.`, name);
  }
  if (bytes !== end - begin) {
    throw err(
      'size-mismatch',
      `tensor ${quote(name)} is ${dtype} ${formatShape(shape)} = ${bytes} bytes, but data_offsets [${begin}, ${end}] span ${end - begin}.`,
      name,
    );
  }
  return { name, dtype, shape, begin, end };
}

// ---------------------------------------------------------------------------------------------------------
// A linear scan over JSON text that JSON.parse has already accepted, for what JSON.parse hides.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

interface JsonScan {
  /** The first key seen twice in the root object (parent undefined) or in an object directly under it. */
  duplicate: { parent: string | undefined; key: string } | undefined;
  /** Root keys whose value contains a number written with a fraction, exponent or minus sign. */
  nonInteger: Set<string>;
  /** Some string escapes a lone surrogate (serde_json refuses those; UTF-8 cannot hold them). */
  loneSurrogate: boolean;
}

/**
 * Iterative (no recursion, so nesting depth cannot overflow the stack) and linear in the text. Keys with
 * escapes are decoded with JSON.parse, so "a\u0062" and "ab" are the same key, as they are to any reader.
 */
function scanJson(json: string): JsonScan {
  const nonInteger = new Set<string>();
  const rootKeys = new Set<string>();
  let childKeys: Set<string> | undefined; // keys of the object open at depth 2, if that container is an object
  const isObject: boolean[] = []; // container kind per open depth
  let expectKey = false;
  let rootKey = '';
  const n = json.length;
  let i = 0;
  while (i < n) {
    const c = json.charCodeAt(i);
    if (c === QUOTE) {
      // Jump from quote to quote (indexOf is much faster than a char loop); a quote preceded by an odd
      // number of backslashes is escaped and does not end the string.
      let j = i + 1;
      for (;;) {
        const q = json.indexOf('"', j);
        if (q < 0) {
          j = n;
          break;
        }
        let b = q - 1;
        while (json.charCodeAt(b) === BACKSLASH) b--;
        j = q;
        if ((q - 1 - b) % 2 === 0) break;
        j = q + 1;
      }
      const escaped = json.slice(i + 1, j).includes('\\');
      const value = escaped ? (JSON.parse(json.slice(i, j + 1)) as string) : undefined;
      if (value !== undefined && hasLoneSurrogate(value)) {
        return { duplicate: undefined, nonInteger, loneSurrogate: true };
      }
      if (expectKey) {
        const key = value ?? json.slice(i + 1, j);
        const depth = isObject.length;
        if (depth === 1) {
          if (rootKeys.has(key)) return { duplicate: { parent: undefined, key }, nonInteger, loneSurrogate: false };
          rootKeys.add(key);
          rootKey = key;
        } else if (depth === 2 && childKeys) {
          if (childKeys.has(key)) return { duplicate: { parent: rootKey, key }, nonInteger, loneSurrogate: false };
          childKeys.add(key);
        }
        expectKey = false;
      }
      i = j + 1;
    } else if (c === 0x7b /* { */) {
      isObject.push(true);
      if (isObject.length === 2) childKeys = new Set();
      expectKey = true;
      i++;
    } else if (c === 0x5b /* [ */) {
      isObject.push(false);
      expectKey = false;
      i++;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      isObject.pop();
      if (isObject.length < 2) childKeys = undefined;
      expectKey = false;
      i++;
    } else if (c === 0x2c /* , */) {
      expectKey = isObject[isObject.length - 1] ?? false;
      i++;
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      let integer = true;
      let j = i;
      for (; j < n; j++) {
        const d = json.charCodeAt(j);
        if (d >= 0x30 && d <= 0x39) continue;
        if (d === 0x2d || d === 0x2b || d === 0x2e || d === 0x65 || d === 0x45) integer = false;
        else break;
      }
      if (!integer) nonInteger.add(rootKey);
      i = j;
    } else {
      i++;
    }
  }
  return { duplicate: undefined, nonInteger, loneSurrogate: false };
}

export function hasLoneSurrogate(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
      else return true;
    } else if (c >= 0xdc00 && c <= 0xdfff) return true;
  }
  return false;
}

/** Where the top-level object of possibly-invalid JSON closes (index after "}"), or -1. Only to word errors. */
function findObjectEnd(text: string): number {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      for (i++; i < text.length && text.charCodeAt(i) !== QUOTE; i++) if (text.charCodeAt(i) === BACKSLASH) i++;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) {
      if (--depth === 0) return i + 1;
    }
  }
  return -1;
}

function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Files

async function readExact(
  source: ByteSource,
  offset: number,
  length: number,
  file: string,
  tensor?: string,
): Promise<Uint8Array> {
  const bytes = await source.read(offset, length);
  if (bytes.byteLength !== length) {
    throw new SafetensorsError(
      'short-read',
      `asked for ${length} bytes at offset ${offset} and got ${bytes.byteLength}.`,
      { file, tensor },
    );
  }
  return bytes;
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A typed view of `bytes`, copied first when the offset is not a multiple of the element size. */
function typed<T>(
  bytes: Uint8Array,
  size: number,
  make: (buffer: ArrayBufferLike, offset: number, length: number) => T,
): T {
  const aligned = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  return make(aligned.buffer, aligned.byteOffset, aligned.byteLength / size);
}

/** Decodes one tensor's little-endian bytes (as the format stores them) into its typed array. */
export function decodeTensor(info: TensorInfo, bytes: Uint8Array): LoadedTensor {
  if (bytes.byteLength !== info.byteLength) {
    throw new RangeError(`${info.name}: expected ${info.byteLength} bytes, got ${bytes.byteLength}`);
  }
  // Typed arrays use the platform's byte order; every platform with WebGPU is little-endian.
  if (!littleEndian && DTYPE_BYTES[info.dtype] > 1) {
    throw new Error('safetensors: big-endian platforms are not supported');
  }
  let data: TensorData;
  switch (info.dtype) {
    case 'F64':
      data = typed(bytes, 8, (b, o, n) => new Float64Array(b, o, n));
      break;
    case 'F32':
      data = typed(bytes, 4, (b, o, n) => new Float32Array(b, o, n));
      break;
    case 'F16':
    case 'U16':
      data = typed(bytes, 2, (b, o, n) => new Uint16Array(b, o, n));
      break;
    case 'BF16':
      data = bf16BytesToF32(bytes);
      break;
    case 'I64':
      data = typed(bytes, 8, (b, o, n) => new BigInt64Array(b, o, n));
      break;
    case 'I32':
      data = typed(bytes, 4, (b, o, n) => new Int32Array(b, o, n));
      break;
    case 'I16':
      data = typed(bytes, 2, (b, o, n) => new Int16Array(b, o, n));
      break;
    case 'I8':
      data = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      break;
    case 'U64':
      data = typed(bytes, 8, (b, o, n) => new BigUint64Array(b, o, n));
      break;
    case 'U32':
      data = typed(bytes, 4, (b, o, n) => new Uint32Array(b, o, n));
      break;
    case 'U8':
    case 'BOOL':
      data = bytes;
      break;
  }
  return { info, data };
}

/**
 * bfloat16 is the top half of an f32 (see bf16BitsToF32 in gpu/f16.ts); this is the same widening in bulk,
 * straight from the bytes so an unaligned tensor needs no extra copy.
 */
function bf16BytesToF32(bytes: Uint8Array): Float32Array {
  const n = bytes.byteLength >>> 1;
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) bits[i] = (bytes[2 * i] | (bytes[2 * i + 1] << 8)) << 16;
  return out;
}

export interface OpenOptions {
  /** Name for messages and TensorInfo.file; default the source's name. */
  name?: string;
}

/**
 * Opens a safetensors file: reads the 8-byte length and the header (nothing else), validates everything,
 * and returns a reader that fetches each tensor's bytes only when asked.
 */
export async function openSafetensors(source: ByteSource, options: OpenOptions = {}): Promise<SafetensorsFile> {
  const file = options.name ?? source.name;
  const size = source.size;
  checkFileSize(size);
  if (size < 8) {
    throw new SafetensorsError(
      'too-small',
      `the file has ${size} bytes, fewer than the 8-byte header length.`,
      { file },
    );
  }
  const n = readHeaderLength(await readExact(source, 0, 8, file), size, file);
  const header = parseSafetensorsHeader(await readExact(source, 8, n, file), size, file);
  const info = (name: string): TensorInfo => {
    const t = header.tensors.get(name);
    if (!t) {
      throw new SafetensorsError(
        'missing-tensor',
        `there is no tensor ${quote(name)} (the file has ${header.tensors.size}).`,
        { file, tensor: name },
      );
    }
    return t;
  };
  const readTensorBytes = async (name: string) => {
    const t = info(name);
    return readExact(source, t.byteOffset, t.byteLength, file, name);
  };
  const readTensorRange = async (name: string, offset: number, length: number) => {
    const t = info(name);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > t.byteLength) {
      throw new RangeError(`${name}: bytes ${offset}..${offset + length} are outside its ${t.byteLength} bytes`);
    }
    return readExact(source, t.byteOffset + offset, length, file, name);
  };
  return {
    name: file,
    size,
    source,
    metadata: header.metadata,
    dataOffset: header.dataOffset,
    tensors: header.tensors,
    readTensorBytes,
    readTensorRange,
    readTensor: async (name) => decodeTensor(info(name), await readTensorBytes(name)),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Sharded models

export interface SafetensorsIndex {
  /** The index's `metadata` (e.g. total_size), as given; a null-prototype copy. */
  metadata: Record<string, unknown>;
  /** Tensor name → shard file name, in index order. */
  weightMap: Map<string, string>;
}

/** Why a shard file name is unsafe to resolve against a base path or URL, or undefined when it is fine. */
function unsafeShardName(f: string): string | undefined {
  if (f === '') return 'is empty';
  if (f === '.' || f === '..') return 'names a directory';
  if (/[/\\]/.test(f)) return 'contains a path separator';
  if (/[:%?#]/.test(f)) return 'contains ":", "%", "?" or "#", which would change the URL it resolves to';
  if (/[\u0000-\u001f\u007f]/.test(f)) return 'contains control characters';
  return undefined;
}

/**
 * Validates `model.safetensors.index.json`: `{ metadata?: object, weight_map: { tensor: fileName } }`.
 * File names must be plain names (no "/", "\\", "..", URL syntax), so a hostile index cannot point
 * elsewhere. Duplicate keys are detected when the index is given as text. Other top-level keys are ignored.
 */
export function parseSafetensorsIndex(
  index: string | unknown,
  file = 'model.safetensors.index.json',
): SafetensorsIndex {
  const bad = (detail: string, tensor?: string) => new SafetensorsError('bad-index', detail, { file, tensor });
  let root: unknown = index;
  if (typeof index === 'string') {
    try {
      root = JSON.parse(index);
    } catch (e) {
      throw bad(`the index is not valid JSON (${e instanceof Error ? e.message.slice(0, 200) : 'parse error'}).`);
    }
    if (isPlainObject(root)) {
      const scan = scanJson(index);
      if (scan.duplicate) {
        throw scan.duplicate.parent === undefined
          ? bad(`the key ${quote(scan.duplicate.key)} appears twice.`)
          : bad(`${quote(scan.duplicate.parent)} has the key ${quote(scan.duplicate.key)} twice.`, scan.duplicate.key);
      }
    }
  }
  if (!isPlainObject(root)) throw bad(`the index must be a JSON object, got ${describeValue(root)}.`);
  const metadata = Object.create(null) as Record<string, unknown>;
  if (Object.hasOwn(root, 'metadata')) {
    const m = root.metadata;
    if (!isPlainObject(m)) throw bad(`"metadata" must be an object, got ${describeValue(m)}.`);
    for (const k of Object.keys(m)) metadata[k] = m[k];
  }
  const map = Object.hasOwn(root, 'weight_map') ? root.weight_map : undefined;
  if (!isPlainObject(map)) {
    throw bad(`"weight_map" must be an object mapping tensor names to file names, got ${describeValue(map)}.`);
  }
  const weightMap = new Map<string, string>();
  for (const tensor of Object.keys(map)) {
    const f = map[tensor];
    if (tensor === METADATA_KEY) throw bad('"__metadata__" is not a tensor name.', tensor);
    if (typeof f !== 'string') {
      throw bad(`weight_map[${quote(tensor)}] must be a file name, got ${describeValue(f)}.`, tensor);
    }
    const why = unsafeShardName(f);
    if (why) {
      throw bad(`weight_map[${quote(tensor)}] = ${quote(f)} ${why}; shard names must be plain file names.`, tensor);
    }
    weightMap.set(tensor, f);
  }
  if (weightMap.size === 0) throw bad('weight_map is empty.');
  return { metadata, weightMap };
}

export interface ShardedSafetensors extends TensorSource {
  /** The index's metadata (not the shards' `__metadata__`, which each shard in `shards` keeps). */
  readonly metadata: Record<string, unknown>;
  /** Shard file name → opened shard, in index order. */
  readonly shards: ReadonlyMap<string, SafetensorsFile>;
}

export interface OpenShardedOptions {
  /** The index's name for messages. */
  indexName?: string;
}

function isAbort(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { name?: unknown }).name === 'AbortError';
}

/**
 * Opens a sharded model from its index (text, or an already parsed object). `openShard` turns a shard file
 * name from the index into a ByteSource (e.g. `name => fetchSource(new URL(name, base).href)`); each shard is
 * opened once, all in parallel. Every shard's header is validated, and the shards must agree with the index
 * exactly: each tensor in the shard the index names, no tensor in two shards, no tensor the index omits.
 */
export async function openShardedSafetensors(
  index: string | unknown,
  openShard: (fileName: string) => Promise<ByteSource>,
  options: OpenShardedOptions = {},
): Promise<ShardedSafetensors> {
  const indexName = options.indexName ?? 'model.safetensors.index.json';
  const { metadata, weightMap } = parseSafetensorsIndex(index, indexName);
  const firstTensor = new Map<string, string>(); // shard → a tensor it should hold, for messages
  for (const [tensor, f] of weightMap) if (!firstTensor.has(f)) firstTensor.set(f, tensor);

  const opened = await Promise.all(
    [...firstTensor.keys()].map(async (f) => {
      let source: ByteSource;
      try {
        source = await openShard(f);
      } catch (e) {
        if (isAbort(e)) throw e;
        const why = e instanceof Error ? e.message : String(e);
        throw new SafetensorsError(
          'missing-shard',
          `could not open shard ${quote(f)} named in ${indexName} (for tensor ${quote(firstTensor.get(f) ?? '')}): ${why}.`,
          { file: f, cause: e },
        );
      }
      return [f, await openSafetensors(source, { name: f })] as const;
    }),
  );
  const shards = new Map(opened);

  const owner = new Map<string, string>(); // tensor → the shard that actually holds it
  const tensors = new Map<string, TensorInfo>();
  for (const [f, shard] of shards) {
    for (const [name, info] of shard.tensors) {
      const other = owner.get(name);
      if (other !== undefined) {
        throw new SafetensorsError(
          'duplicate-name',
          `tensor ${quote(name)} is in both ${quote(other)} and ${quote(f)}.`,
          { file: f, tensor: name },
        );
      }
      owner.set(name, f);
      tensors.set(name, info);
    }
  }
  for (const [name, f] of weightMap) {
    const actual = owner.get(name);
    if (actual === undefined) {
      throw new SafetensorsError(
        'shard-mismatch',
        `${indexName} puts tensor ${quote(name)} in ${quote(f)}, but no shard holds it.`,
        { file: f, tensor: name },
      );
    }
    if (actual !== f) {
      throw new SafetensorsError(
        'shard-mismatch',
        `${indexName} puts tensor ${quote(name)} in ${quote(f)}, but it is in ${quote(actual)}.`,
        { file: actual, tensor: name },
      );
    }
  }
  for (const [name, f] of owner) {
    if (!weightMap.has(name)) {
      throw new SafetensorsError(
        'shard-mismatch',
        `shard ${quote(f)} holds tensor ${quote(name)}, which ${indexName} does not list.`,
        { file: f, tensor: name },
      );
    }
  }

  const shardOf = (name: string): SafetensorsFile => {
    const f = owner.get(name);
    const shard = f === undefined ? undefined : shards.get(f);
    if (!shard) {
      throw new SafetensorsError(
        'missing-tensor',
        `there is no tensor ${quote(name)} in the model (${tensors.size} tensors).`,
        { file: indexName, tensor: name },
      );
    }
    return shard;
  };
  return {
    metadata,
    shards,
    tensors,
    readTensorBytes: async (name) => shardOf(name).readTensorBytes(name),
    readTensorRange: async (name, offset, length) => shardOf(name).readTensorRange(name, offset, length),
    readTensor: async (name) => shardOf(name).readTensor(name),
  };
}
