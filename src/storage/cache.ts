/**
 * The IndexedDB layout of the weight cache, through idb-keyval's one custom store `webgpu-llm`/`files`:
 *
 * - `['chunk', modelId, file, index]`: an ArrayBuffer of at most 64 MiB (Chrome refuses values over ~128 MB).
 * - `['progress', modelId, file]`: a FileProgress, the chunks verified so far; written with each chunk in one
 *   transaction, so a chunk is never stored without its record (what a resumed download trusts).
 * - `['manifest', modelId]`: the Manifest, written last, in one transaction with the removal of the progress
 *   records: a model without a manifest is never taken as complete.
 *
 * Keys are arrays, not `chunk/<modelId>/...` strings, so a model's or a file's keys form one key range even
 * when ids and file names contain `/`. Stored values are checked with type guards when read: the database
 * outlives the code that wrote it.
 */
import { createStore, del, get, promisifyRequest, set, setMany, type UseStore } from 'idb-keyval';
import { isJsonObject } from '../util/json';

const DB_NAME = 'webgpu-llm';
const STORE_NAME = 'files';

let store: UseStore | undefined;

/** The store, opened on first use (importing this module touches no database). */
export function cacheStore(): UseStore {
  store ??= createStore(DB_NAME, STORE_NAME);
  return store;
}

export interface ChunkInfo {
  /** Bytes in the chunk. */
  size: number;
  /** SHA-256 of the chunk's bytes, lowercase hex. */
  sha256: string;
}

export interface CachedFile {
  name: string;
  size: number;
  /** In file order; every chunk but the last holds the chunk size the file was downloaded with. */
  chunks: ChunkInfo[];
}

export interface Manifest {
  version: 1;
  modelId: string;
  /** The model URL it was downloaded from, without query string. */
  url: string;
  /** When the download completed (ISO 8601). */
  date: string;
  totalBytes: number;
  files: CachedFile[];
  /** Optional files the server answered 404 for. */
  absent: string[];
}

/** A file being downloaded: the chunks stored and verified so far. */
export interface FileProgress {
  version: 1;
  modelId: string;
  /** The model URL, without query string: a partial file is only resumed from the same place. */
  url: string;
  file: string;
  chunkBytes: number;
  /** The file's size as the server declared it, or null when it did not. */
  size: number | null;
  /** The server's ETag, so a resumed download notices a file replaced in between; null when none. */
  etag: string | null;
  chunks: ChunkInfo[];
  /** True once the last chunk is stored. */
  complete: boolean;
  /** Last update (ISO 8601). */
  date: string;
}

const manifestKey = (modelId: string): IDBValidKey => ['manifest', modelId];
const progressKey = (modelId: string, file: string): IDBValidKey => ['progress', modelId, file];
export const chunkKey = (modelId: string, file: string, index: number): IDBValidKey => ['chunk', modelId, file, index];

/** Every key that starts with the array `prefix` (an array sorts after any string or number element). */
function prefixRange(prefix: IDBValidKey[]): IDBKeyRange {
  return IDBKeyRange.bound(prefix, [...prefix, []]);
}

const isSize = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function isChunkInfo(v: unknown): v is ChunkInfo {
  return isJsonObject(v) && isSize(v.size) && typeof v.sha256 === 'string' && /^[0-9a-f]{64}$/.test(v.sha256);
}

const isChunkList = (v: unknown): v is ChunkInfo[] => Array.isArray(v) && v.every(isChunkInfo);

function isCachedFile(v: unknown): v is CachedFile {
  return (
    isJsonObject(v) &&
    typeof v.name === 'string' &&
    isSize(v.size) &&
    isChunkList(v.chunks) &&
    v.chunks.reduce((sum, c) => sum + c.size, 0) === v.size
  );
}

function isManifest(v: unknown): v is Manifest {
  return (
    isJsonObject(v) &&
    v.version === 1 &&
    typeof v.modelId === 'string' &&
    typeof v.url === 'string' &&
    typeof v.date === 'string' &&
    isSize(v.totalBytes) &&
    Array.isArray(v.files) &&
    v.files.every(isCachedFile) &&
    Array.isArray(v.absent) &&
    v.absent.every((f) => typeof f === 'string')
  );
}

function isFileProgress(v: unknown): v is FileProgress {
  return (
    isJsonObject(v) &&
    v.version === 1 &&
    typeof v.modelId === 'string' &&
    typeof v.url === 'string' &&
    typeof v.file === 'string' &&
    isSize(v.chunkBytes) &&
    v.chunkBytes > 0 &&
    (v.size === null || isSize(v.size)) &&
    (v.etag === null || typeof v.etag === 'string') &&
    isChunkList(v.chunks) &&
    typeof v.complete === 'boolean' &&
    typeof v.date === 'string'
  );
}

export async function readManifest(modelId: string): Promise<Manifest | undefined> {
  const m = await get<unknown>(manifestKey(modelId), cacheStore());
  // An unreadable manifest counts as none: the model downloads again and the manifest is rewritten.
  return isManifest(m) && m.modelId === modelId ? m : undefined;
}

export async function readProgress(modelId: string, file: string): Promise<FileProgress | undefined> {
  const p = await get<unknown>(progressKey(modelId, file), cacheStore());
  return isFileProgress(p) && p.modelId === modelId && p.file === file ? p : undefined;
}

/** A stored chunk, or undefined when missing or not an ArrayBuffer (both mean: fetch it again). */
export async function readChunk(modelId: string, file: string, index: number): Promise<ArrayBuffer | undefined> {
  const v = await get<unknown>(chunkKey(modelId, file, index), cacheStore());
  return v instanceof ArrayBuffer ? v : undefined;
}

/** The chunk's bytes as an ArrayBuffer of exactly its length (a view's whole buffer may be larger). */
function exactBuffer(bytes: Uint8Array<ArrayBuffer>): ArrayBuffer {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.slice().buffer;
}

/** Stores a verified chunk as the last one `progress` lists, together with that record (one transaction). */
export async function writeChunkWithProgress(progress: FileProgress, bytes: Uint8Array<ArrayBuffer>): Promise<void> {
  await setMany(
    [
      [chunkKey(progress.modelId, progress.file, progress.chunks.length - 1), exactBuffer(bytes)],
      [progressKey(progress.modelId, progress.file), progress],
    ],
    cacheStore(),
  );
}

export async function writeProgress(progress: FileProgress): Promise<void> {
  await set(progressKey(progress.modelId, progress.file), progress, cacheStore());
}

/** Puts back a repaired chunk of a complete model (its manifest already lists it). */
export async function writeChunk(modelId: string, file: string, index: number, bytes: Uint8Array<ArrayBuffer>): Promise<void> {
  await set(chunkKey(modelId, file, index), exactBuffer(bytes), cacheStore());
}

export async function deleteChunk(modelId: string, file: string, index: number): Promise<void> {
  await del(chunkKey(modelId, file, index), cacheStore());
}

/** Drops a file's chunks and progress record, so its download starts over. */
export async function deleteFileData(modelId: string, file: string): Promise<void> {
  await cacheStore()('readwrite', (s) => {
    s.delete(prefixRange(['chunk', modelId, file]));
    s.delete(progressKey(modelId, file));
    return promisifyRequest(s.transaction);
  });
}

/** Writes the manifest and drops the progress records it replaces, in one transaction. */
export async function writeManifest(manifest: Manifest): Promise<void> {
  await cacheStore()('readwrite', (s) => {
    s.put(manifest, manifestKey(manifest.modelId));
    s.delete(prefixRange(['progress', manifest.modelId]));
    return promisifyRequest(s.transaction);
  });
}

/**
 * Removes a model's chunks, progress records and manifest, in one transaction. Waits for a download of the
 * same model in progress (in any tab), which would otherwise go on writing chunks after the delete.
 */
export async function deleteCachedModel(modelId: string): Promise<void> {
  await withDownloadLock(modelId, undefined, () => deleteModelData(modelId));
}

async function deleteModelData(modelId: string): Promise<void> {
  await cacheStore()('readwrite', (s) => {
    s.delete(prefixRange(['chunk', modelId]));
    s.delete(prefixRange(['progress', modelId]));
    s.delete(manifestKey(modelId));
    return promisifyRequest(s.transaction);
  });
}

export interface CachedModelInfo {
  modelId: string;
  /** The model URL it was downloaded from, without query string. */
  url: string;
  /** For a complete model its size; for an incomplete one the bytes verified and stored so far. */
  totalBytes: number;
  /** The files stored (for an incomplete model: those with at least a download started). */
  files: string[];
  /** True when the manifest is written: the model opens without network. */
  complete: boolean;
  /** When the download completed, or (incomplete) when it last stored a chunk; ISO 8601. */
  date: string;
}

/** Every model in the cache, complete or not, sorted by id. Reads manifests and progress records, never chunks. */
export async function listCachedModels(): Promise<CachedModelInfo[]> {
  const [manifests, progress] = await cacheStore()('readonly', (s) =>
    Promise.all([
      promisifyRequest<unknown[]>(s.getAll(prefixRange(['manifest']))),
      promisifyRequest<unknown[]>(s.getAll(prefixRange(['progress']))),
    ]),
  );
  const models = new Map<string, CachedModelInfo>();
  for (const m of manifests.filter(isManifest)) {
    models.set(m.modelId, {
      modelId: m.modelId,
      url: m.url,
      totalBytes: m.totalBytes,
      files: m.files.map((f) => f.name),
      complete: true,
      date: m.date,
    });
  }
  for (const p of progress.filter(isFileProgress)) {
    const stored = p.chunks.reduce((sum, c) => sum + c.size, 0);
    const known = models.get(p.modelId);
    if (!known) {
      models.set(p.modelId, { modelId: p.modelId, url: p.url, totalBytes: stored, files: [p.file], complete: false, date: p.date });
    } else if (!known.complete) {
      known.totalBytes += stored;
      known.files.push(p.file);
      if (p.date > known.date) known.date = p.date;
    }
  }
  return [...models.values()].sort((a, b) => (a.modelId < b.modelId ? -1 : a.modelId > b.modelId ? 1 : 0));
}

/** `navigator.storage.estimate()`, or undefined where the browser lacks it or it fails. */
export async function estimateStorage(): Promise<{ usage: number; quota: number } | undefined> {
  try {
    const e = await globalThis.navigator?.storage?.estimate();
    return e?.usage !== undefined && e.quota !== undefined ? { usage: e.usage, quota: e.quota } : undefined;
  } catch {
    return undefined;
  }
}

let persistAsked = false;

/**
 * Asks once per page for persistent storage, so the browser does not evict gigabytes of weights under
 * storage pressure. Not awaited: some browsers ask the user, and a refusal changes nothing here.
 */
export function requestPersistence(): void {
  if (persistAsked) return;
  persistAsked = true;
  try {
    void globalThis.navigator?.storage?.persist?.().catch(() => undefined);
  } catch {
    // Refused synchronously (e.g. an insecure context): the cache works without persistence.
  }
}

export function isQuotaExceeded(e: unknown): boolean {
  return e instanceof DOMException && e.name === 'QuotaExceededError';
}

/**
 * Runs `fn` holding the model's download lock, so two tabs never write the same model at once; the second
 * waits, and then finds the manifest the first wrote. Without the Web Locks API it runs `fn` unlocked.
 * `signal` aborts the wait (the lock request rejects with an AbortError).
 */
export async function withDownloadLock<T>(modelId: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  const locks = globalThis.navigator?.locks;
  if (!locks) return fn();
  return await locks.request(`webgpu-llm:download:${modelId}`, signal ? { signal } : {}, fn);
}
