/**
 * Streaming one file into verified chunks: each chunk is hashed and stored with its progress record in one
 * transaction, so an interrupted download resumes after the last stored chunk with a Range request.
 */
import { looksLikeHtml, parseContentRange, textTooLarge, type Answer } from '../net/http';
import { writeChunkWithProgress, writeProgress, deleteFileData, type FileProgress } from './cache';
import { guardQuota, request, storedBytes, throwIfAborted, type Context } from './context';
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

/** A file to download: its size when the server declared one, and what an earlier attempt stored. */
export interface PlanEntry {
  file: string;
  size: number | undefined;
  progress: FileProgress | undefined;
  /** The most bytes the file may have (text files are capped); undefined for weights. */
  maxBytes: number | undefined;
}

const PROGRESS_INTERVAL_MS = 100;
const RATE_WINDOW_MS = 5000;

/** Streams one file into verified chunks, continuing after the chunks an earlier attempt stored. */
export async function downloadFile(ctx: Context, entry: PlanEntry, tracker: ProgressTracker | undefined): Promise<FileProgress> {
  const { file } = entry;
  if (entry.progress?.complete) return entry.progress;
  throwIfAborted(ctx);
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
  let res = await request(ctx, file, from > 0 ? { range: [from] } : {});
  /** Set for a 206 answer: the bytes it must hold, and the file size from its Content-Range. */
  let partial: { length: number; fileSize: number } | undefined;

  if (from > 0) {
    const resume = await checkResume(res, from, progress);
    if (resume === 'restart') {
      // A 200 is the whole file, usable as is; any other answer (416, another file version) is not.
      if (res.status !== 200) {
        await res.discard();
        res = await request(ctx, file);
      }
      await deleteFileData(ctx.modelId, file);
      sizeHint = undefined;
      progress = fresh();
      from = 0;
    } else if (resume !== 'error') partial = resume;
  }
  if (from === 0 && res.status === 206) {
    await res.discard();
    throw res.error('unexpected-partial', 'the server answered 206 Partial Content to a request for the whole file.');
  }
  await res.check();

  const declared = partial ? undefined : res.contentLength();
  progress = { ...progress, etag: res.header('ETag') ?? progress.etag, size: partial?.fileSize ?? declared ?? progress.size };
  const tooLarge = (size: string) => textTooLarge(res, size, entry.maxBytes ?? 0);
  if (entry.maxBytes !== undefined && progress.size !== null && progress.size > entry.maxBytes) {
    await res.discard();
    throw tooLarge(`${progress.size.toLocaleString('en-US')} bytes`);
  }
  tracker?.start(file, from, progress.size ?? undefined);

  const storeChunk = async (bytes: Uint8Array<ArrayBuffer>, complete: boolean): Promise<void> => {
    // An error page sent as 200 must not be cached as a model file; no model file starts with an HTML tag.
    if (progress.chunks.length === 0 && looksLikeHtml(bytes)) throw res.error('html', 'the body is an HTML page, not the model file.');
    const chunk = { size: bytes.byteLength, sha256: await sha256Hex(bytes) };
    progress = { ...progress, chunks: [...progress.chunks, chunk], complete, date: new Date().toISOString() };
    const stored: FileProgress = progress;
    await guardQuota(ctx, tracker?.remaining() ?? bytes.byteLength, () => writeChunkWithProgress(stored, bytes));
  };

  const pieces = new PieceQueue();
  let received = 0;
  for await (const piece of res.chunks()) {
    received += piece.byteLength;
    if (partial && received > partial.length) throw res.error('short-body', `the range answer holds more than the ${partial.length} bytes its Content-Range says.`);
    if (entry.maxBytes !== undefined && from + received > entry.maxBytes) throw tooLarge(`more than ${entry.maxBytes.toLocaleString('en-US')} bytes`);
    pieces.push(piece);
    while (pieces.length >= ctx.chunkBytes) await storeChunk(pieces.take(ctx.chunkBytes), false);
    tracker?.add(file, piece.byteLength);
    // Checked between pieces, not as one arrives: bytes in hand are stored before an abort takes effect.
    throwIfAborted(ctx);
  }

  // A content-encoded answer declares its compressed length, which the decoded body exceeds; a shorter body is cut off.
  const atLeast = Math.max(declared ?? 0, sizeHint ?? 0);
  if (partial ? received !== partial.length : received < atLeast) {
    throw res.error('short-body', `got ${from + received} bytes of a file of ${partial?.fileSize ?? atLeast} bytes.`);
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
async function checkResume(
  res: Answer,
  from: number,
  progress: FileProgress,
): Promise<{ length: number; fileSize: number } | 'restart' | 'error'> {
  if (res.status !== 206) return res.ok || res.status === 416 ? 'restart' : 'error';
  const range = parseContentRange(res.header('Content-Range'));
  if (typeof range !== 'object' || range.start !== from || (range.total !== undefined && range.end !== range.total - 1)) {
    await res.discard();
    const got = res.header('Content-Range');
    throw res.error(
      'bad-range',
      `asked for bytes ${from}- and got Content-Range ${got === null ? 'none (a cross-origin server must list it in Access-Control-Expose-Headers)' : JSON.stringify(got)}.`,
    );
  }
  const fileSize = range.total ?? range.end + 1;
  const etag = res.header('ETag');
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

export class ProgressTracker {
  private readonly files = new Map<string, { loaded: number; size: number | undefined }>();
  /** Bytes received in this attempt, for the rate. */
  private transferred = 0;
  private readonly samples: Array<{ t: number; bytes: number }> = [{ t: performance.now(), bytes: 0 }];
  private lastEmit = -Infinity;

  constructor(
    private readonly onProgress: ((progress: DownloadProgress) => void) | undefined,
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
