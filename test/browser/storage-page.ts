/**
 * Browser half of the storage tests: exposes the download cache as `window.__storage`, with helpers that
 * break a download midway and report files as sizes and SHA-256 (compared with the originals in Node).
 */
import { get, keys, set } from 'idb-keyval';
import type { ModelFiles } from '../../src/model/files';
import { cacheStore, chunkKey, type CachedModelInfo } from '../../src/storage/cache';
import { HttpError } from '../../src/net';
import { deleteCachedModel, IntegrityError, listCachedModels, openCachedModel, type DownloadProgress } from '../../src/storage';
import { sha256Hex } from '../../src/storage/hash';

/** Every file a model folder may have, as the cache looks for them. */
const MODEL_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'chat_template.jinja',
  'model.safetensors',
  'model.safetensors.index.json',
];

export interface OpenArgs {
  url: string;
  modelId?: string;
  chunkBytes?: number;
  /** Breaks the body of `file` after `bytes`: a stream error ('network'), the caller's signal ('abort'), or no more bytes ('stall'). */
  breakAfter?: { file: string; bytes: number; how: 'network' | 'abort' | 'stall' };
  stallSeconds?: number;
  /** Files to report besides the standard ones (shards, optional text files). */
  extraFiles?: string[];
  /** openCachedModel's optionalTextFiles. */
  optionalTextFiles?: string[];
  /** Flips a byte of a stored chunk after the open, before the files are read. */
  corruptAfterOpen?: { modelId: string; file: string; chunk: number };
  /** Replaces navigator.storage.estimate() for this page. */
  fakeEstimate?: { usage: number; quota: number };
}

export interface ErrorInfo {
  name: string;
  message: string;
  code?: string;
  status?: number;
  file?: string;
  chunk?: number;
}

export interface FileInfo {
  size: number;
  sha256: string;
}

export type OpenResult =
  | {
      ok: true;
      name: string;
      files: Record<string, FileInfo>;
      /** text('config.json') equals its bytes decoded. */
      textMatches: boolean;
      /** Reads straddling chunk boundaries equal the same bytes cut from the whole file. */
      straddlingReadsMatch: boolean;
      progress: DownloadProgress[];
      /** SHA-256 digests computed while openCachedModel ran (before any file was read). */
      digestsAtOpen: number;
    }
  | { ok: false; error: ErrorInfo; progress: DownloadProgress[] };

export interface StorageTestApi {
  open(args: OpenArgs): Promise<OpenResult>;
  list(): Promise<CachedModelInfo[]>;
  remove(modelId: string): Promise<void>;
  /** idb-keyval on the cache's own store, so tests reach into the stored values. */
  idb: {
    get(key: IDBValidKey): Promise<unknown>;
    set(key: IDBValidKey, value: unknown): Promise<void>;
    keys(): Promise<IDBValidKey[]>;
  };
  key: { chunk: typeof chunkKey };
}

declare global {
  interface Window {
    __storage?: StorageTestApi;
  }
}

function errorInfo(e: unknown): ErrorInfo {
  if (!(e instanceof Error)) return { name: 'unknown', message: String(e) };
  const info: ErrorInfo = { name: e.name, message: e.message };
  if (e instanceof HttpError) return { ...info, code: e.code, status: e.status, file: e.file };
  if (e instanceof IntegrityError) return { ...info, file: e.file, chunk: e.chunk };
  return info;
}

function requestUrl(input: RequestInfo | URL): string {
  return typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
}

/** A fetch whose answer for `file` (GET) stops after `bytes` body bytes. */
function breakingFetch(breakAfter: NonNullable<OpenArgs['breakAfter']>, abort: AbortController): typeof fetch {
  return async (input, init) => {
    const res = await fetch(input, init);
    if ((init?.method ?? 'GET') !== 'GET' || !requestUrl(input).endsWith(`/${breakAfter.file}`) || !res.body) return res;
    const reader = res.body.getReader();
    let sent = 0;
    // pull() runs only when the consumer has read everything enqueued, so all bytes up to the break arrive.
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent >= breakAfter.bytes) {
          if (breakAfter.how === 'abort') abort.abort(new Error('test abort'));
          else if (breakAfter.how === 'network') controller.error(new TypeError('connection reset (test)'));
          else await new Promise<never>(() => undefined);
          return;
        }
        const { done, value } = await reader.read();
        if (done) return controller.close();
        const piece = value.subarray(0, breakAfter.bytes - sent);
        sent += piece.byteLength;
        controller.enqueue(piece);
      },
      cancel: (reason) => reader.cancel(reason),
    });
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

async function describeFiles(files: ModelFiles, extraFiles: string[]): Promise<Extract<OpenResult, { ok: true }>> {
  const out: Record<string, FileInfo> = {};
  let straddlingReadsMatch = true;
  let textMatches = false;
  for (const name of [...MODEL_FILES, ...extraFiles]) {
    const source = await files.bytes(name);
    if (!source) continue;
    const whole = new Uint8Array(await source.read(0, source.size));
    out[name] = { size: source.size, sha256: await sha256Hex(whole) };
    for (const at of [65_536 - 100, 3 * 65_536 - 7, source.size - 200]) {
      if (at < 0 || at + 300 > source.size) continue;
      const part = await source.read(at, 300);
      if (!part.every((b, i) => b === whole[at + i])) straddlingReadsMatch = false;
    }
    if (name === 'config.json') textMatches = (await files.text(name)) === new TextDecoder().decode(whole);
  }
  return { ok: true, name: files.name, files: out, textMatches, straddlingReadsMatch, progress: [], digestsAtOpen: 0 };
}

const api: StorageTestApi = {
  async open(args) {
    const progress: DownloadProgress[] = [];
    const abort = new AbortController();
    if (args.fakeEstimate) {
      const estimate = args.fakeEstimate;
      Object.defineProperty(navigator.storage, 'estimate', { value: async () => estimate, configurable: true });
    }
    let digests = 0;
    const digest = crypto.subtle.digest.bind(crypto.subtle);
    crypto.subtle.digest = (algorithm, data) => (digests++, digest(algorithm, data));
    try {
      const files = await openCachedModel(args.url, {
        modelId: args.modelId,
        chunkBytes: args.chunkBytes,
        stallSeconds: args.stallSeconds,
        optionalTextFiles: args.optionalTextFiles,
        signal: abort.signal,
        fetch: args.breakAfter ? breakingFetch(args.breakAfter, abort) : undefined,
        onProgress: (p) => progress.push(p),
      });
      const digestsAtOpen = digests;
      crypto.subtle.digest = digest;
      if (args.corruptAfterOpen) {
        const key = chunkKey(args.corruptAfterOpen.modelId, args.corruptAfterOpen.file, args.corruptAfterOpen.chunk);
        const chunk = await get<unknown>(key, cacheStore());
        if (!(chunk instanceof ArrayBuffer)) throw new Error(`no chunk at ${JSON.stringify(key)}`);
        new Uint8Array(chunk)[0] ^= 0xff;
        await set(key, chunk, cacheStore());
      }
      return { ...(await describeFiles(files, args.extraFiles ?? [])), progress, digestsAtOpen };
    } catch (e) {
      return { ok: false, error: errorInfo(e), progress };
    } finally {
      crypto.subtle.digest = digest;
    }
  },
  list: listCachedModels,
  remove: deleteCachedModel,
  idb: {
    get: (key) => get<unknown>(key, cacheStore()),
    set: (key, value) => set(key, value, cacheStore()),
    keys: () => keys(cacheStore()),
  },
  key: { chunk: chunkKey },
};

window.__storage = api;
