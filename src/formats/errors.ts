/**
 * Typed errors for reading weight files. `code` says which rule was broken so callers (and tests) can
 * branch on it; the message names the file and tensor and says what the user can do.
 */

export type SafetensorsErrorCode =
  /** The file is shorter than the 8-byte header length. */
  | 'too-small'
  /** The header length is over 100,000,000 bytes (or not representable). */
  | 'header-too-large'
  /** A Git LFS pointer file (a few lines of text naming the real file) instead of the weights. */
  | 'lfs-pointer'
  /** 8 + header length runs past the end of the file. */
  | 'header-out-of-bounds'
  | 'header-not-utf8'
  | 'header-not-json'
  /** The header does not start with `{` (leading whitespace and byte-order marks included). */
  | 'header-bad-start'
  /** Bytes after the JSON object inside the header that are not spaces (0x20). */
  | 'bad-padding'
  /** A tensor entry is not `{ dtype, shape, data_offsets }` with the right types and nothing else. */
  | 'bad-entry'
  | 'bad-metadata'
  | 'unknown-dtype'
  /** A shape product or byte size that is not a safe integer (over 2^53 - 1). */
  | 'unsafe-size'
  /** The byte range of a tensor does not match product(shape) × dtype size. */
  | 'size-mismatch'
  /** Offsets that do not tile the data area from 0: a gap, an overlap, end < begin, or bytes after the last tensor. */
  | 'bad-offsets'
  /** The tensors claim more data than the file holds (a cut-off download). */
  | 'truncated'
  /** The same tensor name twice in one header, or in two shards. */
  | 'duplicate-name'
  /** `readTensor` was asked for a name the file (or sharded model) does not have. */
  | 'missing-tensor'
  /** A byte source returned fewer or more bytes than asked for. */
  | 'short-read'
  /** `model.safetensors.index.json` is malformed (not JSON, wrong types, unsafe file names, empty map). */
  | 'bad-index'
  /** A shard listed in the index could not be opened (see `cause`). */
  | 'missing-shard'
  /** A shard does not hold the tensors the index says it holds, or holds tensors the index does not list. */
  | 'shard-mismatch';

const HINTS: Record<SafetensorsErrorCode, string> = {
  'too-small': 'The file is empty or cut off; download it again.',
  'header-too-large': 'This is not a safetensors file, or it is corrupted; download it again.',
  'lfs-pointer':
    'Fetch the real file: `git lfs pull` in a cloned repository, or download it from the /resolve/ URL rather than /raw/.',
  'header-out-of-bounds': 'The file is cut off or not a safetensors file; download it again.',
  'header-not-utf8': 'The header is corrupted; download the file again.',
  'header-not-json': 'The header is corrupted; download the file again.',
  'header-bad-start': 'This is not a safetensors file (the header must start with "{"); check the URL or file.',
  'bad-padding': 'Re-save the file with the safetensors library (the header may only be padded with spaces).',
  'bad-entry': 'Re-save the file with the safetensors library.',
  'bad-metadata': 'Re-save the file with the safetensors library (__metadata__ must map strings to strings).',
  'unknown-dtype': 'Convert the weights to F32, F16 or BF16 (e.g. with the safetensors Python library).',
  'unsafe-size': 'The header is corrupted or describes an impossibly large tensor; download the file again.',
  'size-mismatch': 'The header is corrupted; download the file again or re-save it with the safetensors library.',
  'bad-offsets': 'The header is corrupted; download the file again or re-save it with the safetensors library.',
  truncated: 'The file is cut off (an interrupted download?); download it again.',
  'duplicate-name': 'Re-save the model so each tensor name appears once.',
  'missing-tensor': 'The model does not have the tensor this architecture needs; check the model type and files.',
  'short-read': 'The storage or server returned the wrong number of bytes; try again.',
  'bad-index': 'The index file is corrupted or unsafe; download it again.',
  'missing-shard': 'Check that every shard named in model.safetensors.index.json is present.',
  'shard-mismatch': 'The index and the shard files do not belong together; download them again.',
};

export interface SafetensorsErrorDetails {
  /** The file (or source name) the error is about. */
  file?: string;
  /** The tensor the error is about, where there is one. */
  tensor?: string;
  cause?: unknown;
}

export class SafetensorsError extends Error {
  override readonly name = 'SafetensorsError';
  readonly file: string | undefined;
  readonly tensor: string | undefined;
  constructor(
    readonly code: SafetensorsErrorCode,
    detail: string,
    details: SafetensorsErrorDetails = {},
  ) {
    super(`${details.file ?? 'safetensors'}: ${detail} ${HINTS[code]}`, { cause: details.cause });
    this.file = details.file;
    this.tensor = details.tensor;
  }
}

/** A value described for a message without stringifying it: values from a file can be huge or deeply nested. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'string') return quote(value);
  if (typeof value === 'object') return 'an object';
  return String(value);
}

/** A string quoted for a message, cut to a readable length. */
export function quote(s: string, max = 80): string {
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}
