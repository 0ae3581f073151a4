/**
 * `openCachedModel`: downloads a model folder once into IndexedDB (see cache.ts for the layout) and opens
 * it from there; a complete model opens with no network request at all.
 *
 * A download plans first (plan.ts: every file's size, the quota checked before the first byte), then streams
 * the files one by one into verified chunks (stream.ts); a new attempt after an interruption keeps the
 * verified chunks and asks for the rest with a Range request. Reading (verified.ts) checks every chunk
 * against its size and SHA-256 and fetches a damaged one again.
 */
import type { ModelFiles } from '../model/files';
import { abortReason } from '../net/http';
import { estimateStorage, readManifest, requestPersistence, withDownloadLock, writeManifest, type CachedFile, type Manifest } from './cache';
import { context, guardQuota, storedBytes, throwIfAborted, type Context } from './context';
import { StorageQuotaError } from './errors';
import { plan } from './plan';
import { downloadFile, ProgressTracker, type DownloadProgress } from './stream';
import { cachedFiles } from './verified';

export { MAX_CHUNK_BYTES } from './context';
export type { DownloadProgress } from './stream';

export interface OpenCachedModelOptions {
  /** Called during a download, at most every 100 ms and once at the end of each file. */
  onProgress?: (progress: DownloadProgress) => void;
  /** Aborts the download (with the signal's reason; verified chunks are kept) or the wait for another tab's. */
  signal?: AbortSignal;
  /** The fetch to use (auth wrappers, tests); default the global one. */
  fetch?: typeof globalThis.fetch;
  /**
   * The cache key. Default: the model URL without query string or trailing slash (a Hugging Face repo URL
   * as `https://huggingface.co/<org>/<repo>/resolve/<rev>`). A model cached under the id opens from the
   * cache whatever URL is given.
   */
  modelId?: string;
  /**
   * Small text files to download besides config, tokenizer and weights where the model has them (an embedding
   * model's sentence-transformers files). A model already cached keeps the files it was cached with.
   */
  optionalTextFiles?: readonly string[];
  /** Bytes per stored chunk for new downloads: 1 to 64 MiB, default 64 MiB. Small values exercise resume in tests. */
  chunkBytes?: number;
  /** Seconds without an answer or a byte before HttpError 'stalled' (default 30); loading again resumes. */
  stallSeconds?: number;
}

/**
 * A model folder or Hugging Face repo URL as ModelFiles read from IndexedDB only: downloaded first where not
 * complete in the cache; each chunk is verified as it is read. Fails with HttpError, IntegrityError,
 * StorageQuotaError, a SafetensorsError for a malformed model.safetensors.index.json, a RangeError for a bad
 * chunkBytes, or the signal's reason when aborted.
 */
export async function openCachedModel(url: string, options: OpenCachedModelOptions = {}): Promise<ModelFiles> {
  const ctx = context(url, options);
  try {
    throwIfAborted(ctx);
    const cached = await readManifest(ctx.modelId);
    if (cached) return cachedFiles(ctx, cached);
    return await withDownloadLock(ctx.modelId, ctx.signal, async () => {
      // Another tab may have completed the model while this one waited for the lock.
      const done = await readManifest(ctx.modelId);
      return cachedFiles(ctx, done ?? (await download(ctx, options.onProgress)));
    });
  } catch (e) {
    // E.g. the lock request's own AbortError: the caller sees the signal's reason for every abort.
    if (ctx.signal?.aborted) throw abortReason(ctx.signal);
    throw e;
  }
}

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
