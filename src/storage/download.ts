/**
 * `openCachedModel`: downloads a model folder once into IndexedDB (see cache.ts for the layout) and opens
 * it from there; a complete model opens with no network request at all.
 *
 * A download first asks every file's size (HEAD, in parallel), so progress has a stable total and the quota
 * is checked before the first byte; then it streams the files one by one into verified chunks. A new
 * attempt after an interruption keeps the verified chunks and asks for the rest with a Range request.
 * Every chunk read from the cache is checked against its size and SHA-256; a damaged one is fetched again
 * with a Range request for exactly its bytes.
 */
import { redactUrl } from '../formats/errors';
import { parseSafetensorsIndex } from '../formats/safetensors';
import type { ByteSource } from '../formats/sources';
import { resolveModelUrl, type ModelFiles } from '../model/files';
import {
  deleteChunk,
  deleteFileData,
  estimateStorage,
  isQuotaExceeded,
  readChunk,
  readManifest,
  readProgress,
  requestPersistence,
  withDownloadLock,
  writeChunk,
  writeChunkWithProgress,
  writeManifest,
  writeProgress,
  type CachedFile,
  type FileProgress,
  type Manifest,
} from './cache';
import { DownloadError, IntegrityError, StorageQuotaError } from './errors';
import { sha256Hex } from './hash';

export interface DownloadProgress {
  /** The file being downloaded. */
  file: string;
  /** Bytes of `file` stored, chunks kept from an earlier attempt included. */
  fileLoaded: number;
  /** The size of `file`; where the server declared none, the bytes received so far. */
  fileTotal: number;
  /**
   * Bytes of the model stored, cached ones included. It only grows, except when a server answers a Range
   * request with the whole file and that file starts over.
   */
  loaded: number;
  /** The model's size as known so far: it grows only where a server declares no file size. */
  total: number;
  /** Over the last few seconds of this attempt; 0 before any byte. */
  bytesPerSecond: number;
  /** Remaining bytes over the current rate; Infinity while there is no rate, 0 once all is stored. */
  etaSeconds: number;
}

export interface OpenCachedModelOptions {
  /** Called during a download, at most every 100 ms and once at the end of each file. */
  onProgress?: (progress: DownloadProgress) => void;
  /** Aborts the download (a DownloadError 'aborted'; verified chunks are kept) or the wait for another tab's. */
  signal?: AbortSignal;
  /** The fetch to use (auth wrappers, tests); default the global one. */
  fetch?: typeof globalThis.fetch;
  /**
   * The cache key. Default: the model URL without query string or trailing slash (a Hugging Face repo URL
   * as `https://huggingface.co/<org>/<repo>/resolve/<rev>`). A model cached under the id opens from the
   * cache whatever URL is given.
   */
  modelId?: string;
  /** Bytes per stored chunk for new downloads: 1 to 64 MiB, default 64 MiB. Small values exercise resume in tests. */
  chunkBytes?: number;
}

export const MAX_CHUNK_BYTES = 64 * 2 ** 20;
const PROGRESS_INTERVAL_MS = 100;
const RATE_WINDOW_MS = 5000;
/** Chunks a cached model keeps in memory: tensors are read roughly in file order and may straddle two chunks. */
const KEEP_CHUNKS = 2;

/** The files besides the weights, in download order, and whether a model must have them. */
const OTHER_FILES: ReadonlyArray<readonly [string, boolean]> = [
  ['config.json', true],
  ['generation_config.json', false],
  ['tokenizer.json', true],
  ['tokenizer_config.json', false],
  ['chat_template.jinja', false],
];
const SINGLE_WEIGHTS = 'model.safetensors';
const WEIGHTS_INDEX = 'model.safetensors.index.json';

interface Context {
  modelId: string;
  /** The model URL without query string, for records and messages. */
  url: string;
  resolve: (file: string) => string;
  fetch: typeof globalThis.fetch;
  signal: AbortSignal | undefined;
  chunkBytes: number;
}

/** A file to download: its size when the server declared one, and what an earlier attempt stored. */
interface PlanEntry {
  file: string;
  size: number | undefined;
  progress: FileProgress | undefined;
}

/**
 * A model folder or Hugging Face repo URL as ModelFiles read from IndexedDB only: downloaded first where not
 * complete in the cache, verified chunk by chunk where it is. Fails with DownloadError, IntegrityError,
 * StorageQuotaError, a SafetensorsError for a malformed model.safetensors.index.json, or a RangeError for a
 * bad chunkBytes.
 */
export async function openCachedModel(url: string, options: OpenCachedModelOptions = {}): Promise<ModelFiles> {
  const ctx = context(url, options);
  try {
    throwIfAborted(ctx, undefined);
    const cached = await readManifest(ctx.modelId);
    if (cached) return await openVerified(ctx, cached);
    return await withDownloadLock(ctx.modelId, ctx.signal, async () => {
      // Another tab may have completed the model while this one waited for the lock.
      const done = await readManifest(ctx.modelId);
      return done ? openVerified(ctx, done) : cachedFiles(ctx, await download(ctx, options.onProgress));
    });
  } catch (e) {
    // E.g. the lock request's own AbortError: the caller sees one error type for every abort.
    if (ctx.signal?.aborted && !(e instanceof DownloadError && e.code === 'aborted')) throw abortError(ctx, undefined, e);
    throw e;
  }
}

function context(url: string, options: OpenCachedModelOptions): Context {
  const chunkBytes = options.chunkBytes ?? MAX_CHUNK_BYTES;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > MAX_CHUNK_BYTES) {
    throw new RangeError(`chunkBytes must be an integer from 1 to ${MAX_CHUNK_BYTES}, got ${chunkBytes}`);
  }
  // Relative URLs (e.g. /models/x/) resolve against the page.
  const resolve = resolveModelUrl(new URL(url, globalThis.location?.href).href);
  const base = redactUrl(resolve('')).replace(/\/$/, '');
  return {
    modelId: options.modelId ?? base,
    url: base,
    resolve,
    fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
    signal: options.signal,
    chunkBytes,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Downloading

async function download(ctx: Context, onProgress: OpenCachedModelOptions['onProgress']): Promise<Manifest> {
  const { entries, absent } = await plan(ctx);
  const needed = entries.reduce((sum, e) => sum + (e.progress?.complete ? 0 : Math.max(0, (e.size ?? 0) - storedBytes(e.progress))), 0);
  if (needed > 0) {
    const estimate = await estimateStorage();
    if (estimate && estimate.quota - estimate.usage < needed) {
      throw new StorageQuotaError(ctx.modelId, needed, estimate.usage, estimate.quota);
    }
    requestPersistence();
  }
  const tracker = new ProgressTracker(onProgress, entries);
  const files: CachedFile[] = [];
  for (const entry of entries) {
    const done = await downloadFile(ctx, entry, tracker);
    files.push({ name: done.file, size: storedBytes(done), chunks: done.chunks });
  }
  const manifest: Manifest = {
    version: 1,
    modelId: ctx.modelId,
    url: ctx.url,
    date: new Date().toISOString(),
    totalBytes: files.reduce((sum, f) => sum + f.size, 0),
    files,
    absent,
  };
  await guardQuota(ctx, 0, () => writeManifest(manifest));
  return manifest;
}

/**
 * The files to download with their sizes. For a sharded model the index is downloaded here, since it names
 * the shards.
 */
async function plan(ctx: Context): Promise<{ entries: PlanEntry[]; absent: string[] }> {
  const probes = await Promise.all(
    [...OTHER_FILES, [SINGLE_WEIGHTS, false] as const].map(async ([file, required]) => ({ file, entry: await probe(ctx, file, required) })),
  );
  const entries: PlanEntry[] = [];
  const absent: string[] = [];
  for (const { file, entry } of probes) {
    if (entry) entries.push(entry);
    else absent.push(file);
  }
  if (entries.some((e) => e.file === SINGLE_WEIGHTS)) return { entries, absent };

  const indexEntry = await probe(ctx, WEIGHTS_INDEX, false);
  if (!indexEntry) {
    throw new DownloadError(
      'http-status',
      SINGLE_WEIGHTS,
      ctx.resolve(SINGLE_WEIGHTS),
      `the model has neither ${SINGLE_WEIGHTS} nor ${WEIGHTS_INDEX} (both answered 404).`,
      404,
    );
  }
  const index = await downloadFile(ctx, indexEntry, undefined);
  const indexFile: CachedFile = { name: WEIGHTS_INDEX, size: storedBytes(index), chunks: index.chunks };
  const text = new TextDecoder().decode(await readWhole(ctx, indexFile));
  const shards = [...new Set(parseSafetensorsIndex(text).weightMap.values())];
  entries.push({ file: WEIGHTS_INDEX, size: indexFile.size, progress: index });
  for (const shard of await Promise.all(shards.map((s) => probe(ctx, s, true)))) {
    // probe() only answers undefined (404) for optional files.
    if (shard) entries.push(shard);
  }
  return { entries, absent };
}

/** What an earlier attempt stored for the file, else the server's answer to HEAD; undefined for an absent optional file. */
async function probe(ctx: Context, file: string, required: boolean): Promise<PlanEntry | undefined> {
  const progress = await readProgress(ctx.modelId, file);
  if (progress && progress.url === ctx.url && (progress.complete || progress.chunkBytes === ctx.chunkBytes)) {
    return { file, size: progress.complete ? storedBytes(progress) : (progress.size ?? undefined), progress };
  }
  // Chunks from another URL or of another chunk size cannot be continued.
  if (progress) await deleteFileData(ctx.modelId, file);
  throwIfAborted(ctx, file);
  const res = await send(ctx, file, { method: 'HEAD' });
  await discard(res);
  // A static host may answer any unknown path with its HTML app page: for an optional file that means absent.
  if (!required && (res.status === 404 || (res.ok && isHtml(res)))) return undefined;
  checkAnswer(ctx, file, res);
  return { file, size: contentLength(res), progress: undefined };
}

/** Streams one file into verified chunks, continuing after the chunks an earlier attempt stored. */
async function downloadFile(ctx: Context, entry: PlanEntry, tracker: ProgressTracker | undefined): Promise<FileProgress> {
  const { file } = entry;
  if (entry.progress?.complete) return entry.progress;
  throwIfAborted(ctx, file);
  /** The size declared before this request (HEAD, or an earlier attempt); forgotten when the file starts over. */
  let sizeHint = entry.size;
  const fresh = (): FileProgress => ({
    version: 1,
    modelId: ctx.modelId,
    url: ctx.url,
    file,
    chunkBytes: ctx.chunkBytes,
    size: sizeHint ?? null,
    etag: null,
    chunks: [],
    complete: false,
    date: new Date().toISOString(),
  });
  let progress = entry.progress ?? fresh();
  let from = storedBytes(progress);
  let res = await send(ctx, file, rangeInit(from));
  /** Set for a 206 answer: the bytes it must hold, and the file size from its Content-Range. */
  let partial: { length: number; fileSize: number } | undefined;

  if (from > 0) {
    const resume = checkResume(ctx, file, res, from, progress);
    if (resume === 'restart') {
      // A 200 is the whole file, usable as is; any other answer (416, another file version) is not.
      if (res.status !== 200) {
        await discard(res);
        res = await send(ctx, file, rangeInit(0));
      }
      await deleteFileData(ctx.modelId, file);
      sizeHint = undefined;
      progress = fresh();
      from = 0;
    } else if (resume !== 'error') partial = resume;
  }
  if (from === 0 && res.status === 206) {
    await discard(res);
    throw new DownloadError('unexpected-partial', file, ctx.resolve(file), 'the server answered 206 Partial Content to a request for the whole file.', 206);
  }
  checkAnswer(ctx, file, res);

  const declared = partial ? undefined : contentLength(res);
  progress = { ...progress, etag: res.headers.get('ETag') ?? progress.etag, size: partial?.fileSize ?? declared ?? progress.size };
  tracker?.start(file, from, progress.size ?? undefined);

  const storeChunk = async (bytes: Uint8Array<ArrayBuffer>, complete: boolean): Promise<void> => {
    // An error page sent as 200 must not be cached as a model file; no model file starts with an HTML tag.
    if (progress.chunks.length === 0 && looksLikeHtml(bytes)) {
      throw new DownloadError('html', file, ctx.resolve(file), 'the body is an HTML page, not the model file.', res.status);
    }
    const chunk = { size: bytes.byteLength, sha256: await sha256Hex(bytes) };
    progress = { ...progress, chunks: [...progress.chunks, chunk], complete, date: new Date().toISOString() };
    const stored: FileProgress = progress;
    await guardQuota(ctx, tracker?.remaining() ?? bytes.byteLength, () => writeChunkWithProgress(stored, bytes));
  };

  const pieces = new PieceQueue();
  let received = 0;
  const sizeMismatch = (detail: string) => new DownloadError('size-mismatch', file, ctx.resolve(file), detail, res.status);
  const reader = res.body?.getReader();
  const cancel = () => void reader?.cancel().catch(() => undefined);
  ctx.signal?.addEventListener('abort', cancel);
  let finished = false;
  try {
    for (;;) {
      // Checked between pieces, not as one arrives: bytes in hand are stored before an abort takes effect.
      throwIfAborted(ctx, file);
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = reader ? await reader.read() : { done: true, value: undefined };
      } catch (e) {
        if (ctx.signal?.aborted) throw abortError(ctx, file, e);
        throw new DownloadError('network', file, ctx.resolve(file), `the download broke off (${describe(e)}).`, res.status, { cause: e });
      }
      if (next.done) {
        // Cancelling the reader on abort ends the stream as if complete: the signal tells the two apart.
        throwIfAborted(ctx, file);
        break;
      }
      received += next.value.byteLength;
      if (partial && received > partial.length) throw sizeMismatch(`the range answer holds more than the ${partial.length} bytes its Content-Range says.`);
      pieces.push(next.value);
      while (pieces.length >= ctx.chunkBytes) await storeChunk(pieces.take(ctx.chunkBytes), false);
      tracker?.add(file, next.value.byteLength);
    }
    finished = true;
  } finally {
    ctx.signal?.removeEventListener('abort', cancel);
    if (!finished) cancel();
  }

  // A content-encoded answer declares its compressed length, which the decoded body exceeds; a shorter body is cut off.
  const atLeast = Math.max(declared ?? 0, sizeHint ?? 0);
  if (partial ? received !== partial.length : received < atLeast) {
    throw sizeMismatch(`got ${from + received} bytes of a file of ${partial?.fileSize ?? atLeast} bytes.`);
  }
  if (pieces.length > 0) await storeChunk(pieces.take(pieces.length), true);
  else {
    progress = { ...progress, complete: true, date: new Date().toISOString() };
    await guardQuota(ctx, 0, () => writeProgress(progress));
  }
  tracker?.done(file, storedBytes(progress));
  return progress;
}

/**
 * A resumed request's answer: the range to read; 'restart' when the file must start over (a 200 with the
 * whole file, a 416, a 206 of a file whose size or ETag changed); or 'error' for an error status, which
 * fails the checks every answer goes through (404, 500, ...).
 */
function checkResume(
  ctx: Context,
  file: string,
  res: Response,
  from: number,
  progress: FileProgress,
): { length: number; fileSize: number } | 'restart' | 'error' {
  if (res.status !== 206) return res.ok || res.status === 416 ? 'restart' : 'error';
  const range = parseContentRange(res.headers.get('Content-Range'));
  if (!range || range.start !== from || (range.total !== undefined && range.end !== range.total - 1)) {
    void discard(res);
    const got = res.headers.get('Content-Range');
    throw new DownloadError(
      'bad-range',
      file,
      ctx.resolve(file),
      `asked for bytes ${from}- and got Content-Range ${got === null ? 'none (a cross-origin server must list it in Access-Control-Expose-Headers)' : JSON.stringify(got)}.`,
      206,
    );
  }
  const fileSize = range.total ?? range.end + 1;
  const etag = res.headers.get('ETag');
  const changed = (progress.size !== null && progress.size !== fileSize) || (etag !== null && progress.etag !== null && etag !== progress.etag);
  return changed ? 'restart' : { length: range.end - range.start + 1, fileSize };
}

/** Buffered body pieces, cut into chunks without copying more than once. */
class PieceQueue {
  private readonly pieces: Uint8Array[] = [];
  length = 0;

  push(piece: Uint8Array): void {
    this.pieces.push(piece);
    this.length += piece.byteLength;
  }

  /** The first `n` bytes (n ≤ length) as one array. */
  take(n: number): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const p = this.pieces[0];
      const k = Math.min(p.byteLength, n - at);
      out.set(p.subarray(0, k), at);
      at += k;
      if (k === p.byteLength) this.pieces.shift();
      else this.pieces[0] = p.subarray(k);
    }
    this.length -= n;
    return out;
  }
}

class ProgressTracker {
  private readonly files = new Map<string, { loaded: number; size: number | undefined }>();
  /** Bytes received in this attempt, for the rate. */
  private transferred = 0;
  private readonly samples: Array<{ t: number; bytes: number }> = [{ t: performance.now(), bytes: 0 }];
  private lastEmit = -Infinity;

  constructor(
    private readonly onProgress: OpenCachedModelOptions['onProgress'],
    entries: PlanEntry[],
  ) {
    for (const e of entries) this.files.set(e.file, { loaded: storedBytes(e.progress), size: e.size });
  }

  /** Bytes still to store, for quota messages. */
  remaining(): number {
    let sum = 0;
    for (const f of this.files.values()) sum += Math.max(0, (f.size ?? 0) - f.loaded);
    return sum;
  }

  start(file: string, loaded: number, size: number | undefined): void {
    this.files.set(file, { loaded, size });
  }

  add(file: string, bytes: number): void {
    const f = this.files.get(file);
    if (f) f.loaded += bytes;
    this.transferred += bytes;
    this.emit(file, false);
  }

  done(file: string, size: number): void {
    this.files.set(file, { loaded: size, size });
    this.emit(file, true);
  }

  private emit(file: string, force: boolean): void {
    if (!this.onProgress) return;
    const now = performance.now();
    if (!force && now - this.lastEmit < PROGRESS_INTERVAL_MS) return;
    this.lastEmit = now;
    this.samples.push({ t: now, bytes: this.transferred });
    while (this.samples.length > 2 && now - this.samples[1].t > RATE_WINDOW_MS) this.samples.shift();
    const first = this.samples[0];
    const seconds = (now - first.t) / 1000;
    const bytesPerSecond = seconds > 0 ? (this.transferred - first.bytes) / seconds : 0;
    let loaded = 0;
    let total = 0;
    for (const f of this.files.values()) {
      loaded += f.loaded;
      total += Math.max(f.size ?? 0, f.loaded);
    }
    const f = this.files.get(file);
    this.onProgress({
      file,
      fileLoaded: f?.loaded ?? 0,
      fileTotal: Math.max(f?.size ?? 0, f?.loaded ?? 0),
      loaded,
      total,
      bytesPerSecond,
      etaSeconds: loaded >= total ? 0 : bytesPerSecond > 0 ? (total - loaded) / bytesPerSecond : Infinity,
    });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Reading the cache

/** Checks every chunk (repairing damaged ones) before handing out the files. */
async function openVerified(ctx: Context, manifest: Manifest): Promise<ModelFiles> {
  for (const file of manifest.files) {
    let offset = 0;
    for (let i = 0; i < file.chunks.length; i++) {
      throwIfAborted(ctx, file.name);
      await loadChunk(ctx, file, i, offset);
      offset += file.chunks[i].size;
    }
  }
  return cachedFiles(ctx, manifest);
}

/** ModelFiles over the manifest's files; every chunk read is verified (and repaired) again. */
function cachedFiles(ctx: Context, manifest: Manifest): ModelFiles {
  const files = new Map(manifest.files.map((f) => [f.name, f]));
  const recent = new Map<string, Promise<Uint8Array<ArrayBuffer>>>();
  const chunk = (file: CachedFile, index: number, offset: number): Promise<Uint8Array<ArrayBuffer>> => {
    const key = `${index}:${file.name}`;
    let p = recent.get(key);
    if (p) recent.delete(key);
    else {
      const loading = loadChunk(ctx, file, index, offset);
      loading.catch(() => {
        if (recent.get(key) === loading) recent.delete(key);
      });
      p = loading;
    }
    recent.set(key, p);
    for (const old of recent.keys()) {
      if (recent.size <= KEEP_CHUNKS) break;
      recent.delete(old);
    }
    return p;
  };
  const read = async (file: CachedFile, offset: number, length: number): Promise<Uint8Array<ArrayBuffer>> => {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > file.size) {
      throw new RangeError(`${file.name}: read of ${length} bytes at ${offset} is outside the ${file.size}-byte file`);
    }
    const parts: Array<{ bytes: Uint8Array<ArrayBuffer>; at: number }> = [];
    let start = 0;
    for (let i = 0; i < file.chunks.length && start < offset + length; i++) {
      const end = start + file.chunks[i].size;
      if (end > offset) {
        const bytes = await chunk(file, i, start);
        const from = Math.max(offset, start) - start;
        parts.push({ bytes: bytes.subarray(from, Math.min(end, offset + length) - start), at: Math.max(offset, start) - offset });
      }
      start = end;
    }
    if (parts.length === 1) return parts[0].bytes;
    const out = new Uint8Array(length);
    for (const p of parts) out.set(p.bytes, p.at);
    return out;
  };
  return {
    name: manifest.url,
    async text(name) {
      const file = files.get(name);
      return file === undefined ? undefined : new TextDecoder().decode(await read(file, 0, file.size));
    },
    async bytes(name) {
      const file = files.get(name);
      if (file === undefined) return undefined;
      const source: ByteSource = { name: file.name, size: file.size, read: (offset, length) => read(file, offset, length) };
      return source;
    },
  };
}

async function readWhole(ctx: Context, file: CachedFile): Promise<Uint8Array<ArrayBuffer>> {
  const out = new Uint8Array(file.size);
  let offset = 0;
  for (let i = 0; i < file.chunks.length; i++) {
    out.set(await loadChunk(ctx, file, i, offset), offset);
    offset += file.chunks[i].size;
  }
  return out;
}

/** A chunk from IndexedDB after its size and SHA-256 check; a damaged or missing one is fetched again. */
async function loadChunk(ctx: Context, file: CachedFile, index: number, offset: number): Promise<Uint8Array<ArrayBuffer>> {
  const expected = file.chunks[index];
  const stored = await readChunk(ctx.modelId, file.name, index);
  let problem: string;
  if (stored === undefined) problem = 'missing';
  else if (stored.byteLength !== expected.size) problem = `${stored.byteLength} bytes instead of ${expected.size}`;
  else {
    const bytes = new Uint8Array(stored);
    if ((await sha256Hex(bytes)) === expected.sha256) return bytes;
    problem = 'SHA-256 mismatch';
  }
  return repairChunk(ctx, file, index, offset, problem);
}

async function repairChunk(ctx: Context, file: CachedFile, index: number, offset: number, problem: string): Promise<Uint8Array<ArrayBuffer>> {
  const expected = file.chunks[index];
  await deleteChunk(ctx.modelId, file.name, index);
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await fetchRange(ctx, file.name, offset, expected.size);
    if ((await sha256Hex(bytes)) !== expected.sha256) {
      throw new Error('the bytes downloaded again have another SHA-256 (the file changed on the server?)');
    }
  } catch (e) {
    if (e instanceof DownloadError && e.code === 'aborted') throw e;
    throw new IntegrityError(ctx.modelId, file.name, index, problem, { cause: e });
  }
  await guardQuota(ctx, expected.size, () => writeChunk(ctx.modelId, file.name, index, bytes));
  return bytes;
}

/** Exactly `length` bytes at `offset`, by one Range request that must be answered 206 with that range. */
async function fetchRange(ctx: Context, file: string, offset: number, length: number): Promise<Uint8Array<ArrayBuffer>> {
  const last = offset + length - 1;
  const res = await send(ctx, file, { method: 'GET', headers: { Range: `bytes=${offset}-${last}` } });
  checkAnswer(ctx, file, res);
  const range = parseContentRange(res.headers.get('Content-Range'));
  if (res.status !== 206 || !range || range.start !== offset || range.end !== last) {
    await discard(res);
    throw new DownloadError('bad-range', file, ctx.resolve(file), `asked for bytes ${offset}-${last} and got ${res.status} with Content-Range ${JSON.stringify(res.headers.get('Content-Range'))}.`, res.status);
  }
  let body: Uint8Array<ArrayBuffer>;
  try {
    body = new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    if (ctx.signal?.aborted) throw abortError(ctx, file, e);
    throw new DownloadError('network', file, ctx.resolve(file), `the download broke off (${describe(e)}).`, res.status, { cause: e });
  }
  if (body.byteLength !== length) {
    throw new DownloadError('size-mismatch', file, ctx.resolve(file), `asked for ${length} bytes at ${offset} and got ${body.byteLength}.`, 206);
  }
  return body;
}

// ---------------------------------------------------------------------------------------------------------
// HTTP helpers

async function send(ctx: Context, file: string, init: RequestInit): Promise<Response> {
  const url = ctx.resolve(file);
  try {
    // no-store: the weights live in IndexedDB; a copy in the HTTP cache would only double the disk use.
    return await ctx.fetch(url, { ...init, cache: 'no-store', signal: ctx.signal });
  } catch (e) {
    if (ctx.signal?.aborted) throw abortError(ctx, file, e);
    throw new DownloadError('network', file, url, `the request failed (${describe(e)}).`, 0, { cause: e });
  }
}

function rangeInit(from: number): RequestInit {
  return { method: 'GET', headers: from > 0 ? { Range: `bytes=${from}-` } : {} };
}

/** Rejects error statuses (the body is released first) and HTML pages by their Content-Type. */
function checkAnswer(ctx: Context, file: string, res: Response): void {
  if (!res.ok) {
    void discard(res);
    const hint = res.status === 404 ? 'the model has no such file.' : res.status === 401 || res.status === 403 ? 'access denied (a gated model?).' : 'the server refused the request.';
    throw new DownloadError('http-status', file, ctx.resolve(file), `answered ${res.status} ${res.statusText}: ${hint}`, res.status);
  }
  if (isHtml(res)) {
    void discard(res);
    throw new DownloadError('html', file, ctx.resolve(file), 'answered with an HTML page instead of the file.', res.status);
  }
}

function isHtml(res: Response): boolean {
  return /^\s*(text\/html|application\/xhtml\+xml)/i.test(res.headers.get('Content-Type') ?? '');
}

function looksLikeHtml(bytes: Uint8Array): boolean {
  // TextDecoder drops a leading byte-order mark.
  const head = new TextDecoder().decode(bytes.subarray(0, 64)).trimStart().toLowerCase();
  return head.startsWith('<!doctype') || head.startsWith('<html');
}

function contentLength(res: Response): number | undefined {
  const v = res.headers.get('Content-Length');
  if (v === null || !/^\s*\d+\s*$/.test(v)) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** `bytes a-b/N` or `bytes a-b/*`; undefined when absent or malformed. */
function parseContentRange(header: string | null): { start: number; end: number; total: number | undefined } | undefined {
  const m = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(header ?? '');
  if (!m) return undefined;
  const [start, end] = [Number(m[1]), Number(m[2])];
  const total = m[3] === '*' ? undefined : Number(m[3]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return undefined;
  if (total !== undefined && (!Number.isSafeInteger(total) || end >= total)) return undefined;
  return { start, end, total };
}

async function discard(res: Response): Promise<void> {
  // An unread body holds its connection until garbage-collected.
  await res.body?.cancel().catch(() => undefined);
}

// ---------------------------------------------------------------------------------------------------------
// Small helpers

function storedBytes(progress: FileProgress | undefined): number {
  return progress ? progress.chunks.reduce((sum, c) => sum + c.size, 0) : 0;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function abortError(ctx: Context, file: string | undefined, cause: unknown): DownloadError {
  return new DownloadError('aborted', file, file === undefined ? ctx.url : ctx.resolve(file), 'the download was aborted.', 0, { cause });
}

function throwIfAborted(ctx: Context, file: string | undefined): void {
  if (ctx.signal?.aborted) throw abortError(ctx, file, ctx.signal.reason);
}

/** Runs a write; the browser's QuotaExceededError becomes a StorageQuotaError with the current estimate. */
async function guardQuota(ctx: Context, neededBytes: number, write: () => Promise<void>): Promise<void> {
  try {
    await write();
  } catch (e) {
    if (!isQuotaExceeded(e)) throw e;
    const estimate = await estimateStorage();
    throw new StorageQuotaError(ctx.modelId, neededBytes, estimate?.usage, estimate?.quota, { cause: e });
  }
}
