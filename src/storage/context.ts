/** What planning, streaming and verified reading of the download cache share: the model's URLs and requests. */
import { resolveModelUrl } from '../model/files';
import { redactUrl } from '../net';
import { abortReason, send, type Answer, type HttpOptions, type HttpRequest } from '../net/http';
import { estimateStorage, isQuotaExceeded, type FileProgress } from './cache';
import { StorageQuotaError } from './errors';

export const MAX_CHUNK_BYTES = 64 * 2 ** 20;

export interface Context {
  modelId: string;
  /** The model URL without query string, for records and messages. */
  url: string;
  resolve: (file: string) => string;
  http: HttpOptions;
  signal: AbortSignal | undefined;
  chunkBytes: number;
  /** Text files to fetch besides the standard ones, where the model has them. */
  optionalTextFiles: readonly string[];
}

export interface ContextOptions {
  signal?: AbortSignal;
  fetch?: typeof globalThis.fetch;
  modelId?: string;
  chunkBytes?: number;
  stallSeconds?: number;
  optionalTextFiles?: readonly string[];
}

export function context(url: string, options: ContextOptions): Context {
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
    http: { fetch: options.fetch, signal: options.signal, stallSeconds: options.stallSeconds },
    signal: options.signal,
    chunkBytes,
    optionalTextFiles: options.optionalTextFiles ?? [],
  };
}

/** One request for a model file; no-store since the weights live in IndexedDB (an HTTP cache copy would double the disk use). */
export function request(ctx: Context, file: string, init: Omit<HttpRequest, 'file' | 'noStore'> = {}): Promise<Answer> {
  return send(ctx.resolve(file), { ...init, file, noStore: true }, ctx.http);
}

export function storedBytes(progress: FileProgress | undefined): number {
  return progress ? progress.chunks.reduce((sum, c) => sum + c.size, 0) : 0;
}

/** Ends with the signal's reason; checked between steps, so bytes in hand are stored before an abort takes effect. */
export function throwIfAborted(ctx: Context): void {
  if (ctx.signal?.aborted) throw abortReason(ctx.signal);
}

/** Runs a write; the browser's QuotaExceededError becomes a StorageQuotaError with the current estimate. */
export async function guardQuota(ctx: Context, neededBytes: number, write: () => Promise<void>): Promise<void> {
  try {
    await write();
  } catch (e) {
    if (!isQuotaExceeded(e)) throw e;
    const estimate = await estimateStorage();
    throw new StorageQuotaError(ctx.modelId, neededBytes, estimate?.usage, estimate?.quota, { cause: e });
  }
}
