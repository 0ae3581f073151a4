/**
 * Random-access byte sources for weight files: memory, a Blob/File, or an HTTP URL read with Range requests.
 * A reader asks for one tensor's bytes at a time, so a model larger than one ArrayBuffer can be streamed.
 */
import { HttpError, redactUrl } from './errors';

export { HttpError } from './errors';
export type { HttpErrorCode } from './errors';

export interface ByteSource {
  /** A name for messages: a file name or a URL without its query string. */
  readonly name: string;
  /** Total size in bytes (a non-negative safe integer). */
  readonly size: number;
  /**
   * Exactly `length` bytes starting at `offset` (0 ≤ offset, offset + length ≤ size; a RangeError otherwise).
   * The result may be a view into memory the source keeps (e.g. the caller's buffer): treat it as read-only.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
}

function checkRange(source: { name: string; size: number }, offset: number, length: number): void {
  if (
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(length) ||
    offset < 0 ||
    length < 0 ||
    offset + length > source.size
  ) {
    throw new RangeError(
      `${source.name}: read of ${length} bytes at ${offset} is outside the ${source.size}-byte source`,
    );
  }
}

/** A source over bytes already in memory. Reads return views (no copies). */
export function bytesSource(data: ArrayBuffer | ArrayBufferView, name = 'memory'): ByteSource {
  const bytes =
    data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const source: ByteSource = {
    name,
    size: bytes.byteLength,
    read: async (offset, length) => {
      checkRange(source, offset, length);
      return bytes.subarray(offset, offset + length);
    },
  };
  return source;
}

/** A source over a Blob or File (e.g. from `<input type="file">`); only the slices asked for are read. */
export function blobSource(blob: Blob, name?: string): ByteSource {
  const fileName = 'name' in blob && typeof blob.name === 'string' && blob.name ? blob.name : 'blob';
  const source: ByteSource = {
    name: name ?? fileName,
    size: blob.size,
    read: async (offset, length) => {
      checkRange(source, offset, length);
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
  };
  return source;
}

export interface FetchSourceOptions {
  /** The fetch to use (tests, auth wrappers); default the global one. */
  fetch?: typeof globalThis.fetch;
  /** Aborts the probe and every later read; the abort reason is thrown as is. */
  signal?: AbortSignal;
  /** Extra request headers, e.g. `Authorization` for gated repositories. */
  headers?: Record<string, string>;
  /** Name for messages; default the URL without query string. */
  name?: string;
  /**
   * Bytes fetched by the first request (from offset 0). Reads inside it are served from memory, so for most
   * models the 8-byte length and the whole header come in one round trip. Default 64 KiB.
   */
  prefixBytes?: number;
  /**
   * When the server ignores Range and answers 200 with the whole file, accept it only up to this size (and
   * serve every read from memory); larger files fail with `range-not-supported`. Default 16 MiB.
   */
  maxWholeBytes?: number;
}

interface ContentRange {
  start: number;
  end: number;
  /** undefined when the server sent `*` (size unknown). */
  total: number | undefined;
}

/** `bytes a-b/N`, `bytes a-b/*`; undefined when absent, a string saying what is wrong when malformed. */
function parseContentRange(header: string | null): ContentRange | undefined | string {
  if (header === null) return undefined;
  const m = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(header);
  if (!m) return `malformed Content-Range ${JSON.stringify(header.slice(0, 100))}`;
  const start = Number(m[1]);
  const end = Number(m[2]);
  const total = m[3] === '*' ? undefined : Number(m[3]);
  const safe = (x: number | undefined) => x === undefined || Number.isSafeInteger(x);
  if (!safe(start) || !safe(end) || !safe(total)) {
    return `Content-Range ${JSON.stringify(header)} has numbers beyond 2^53`;
  }
  if (end < start || (total !== undefined && end >= total)) return `inconsistent Content-Range ${JSON.stringify(header)}`;
  return { start, end, total };
}

function isHtml(res: Response): boolean {
  return /^\s*(text\/html|application\/xhtml\+xml)/i.test(res.headers.get('Content-Type') ?? '');
}

function isAbort(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { name?: unknown }).name === 'AbortError';
}

/** The body as bytes; a connection that breaks mid-body becomes an HttpError, not a bare TypeError. */
async function readBody(res: Response, url: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    throw wrapBodyError(e, res, url);
  }
}

function wrapBodyError(e: unknown, res: Response, url: string): unknown {
  if (isAbort(e) || e instanceof HttpError) return e;
  const why = e instanceof Error ? e.message : String(e);
  return new HttpError('network', res.status, url, `the download broke off (${why}); try again`, { cause: e });
}

async function discard(res: Response): Promise<void> {
  // Unread bodies keep connections busy (undici) until garbage-collected; release them now.
  await res.body?.cancel().catch(() => undefined);
}

/**
 * The whole body, but never more than `limit` bytes in memory: a server ignoring Range must not make us
 * buffer gigabytes.
 */
async function readBounded(res: Response, url: string, limit: number): Promise<Uint8Array> {
  const tooBig = (size: string) =>
    new HttpError(
      'range-not-supported',
      res.status,
      url,
      `the server ignored the Range request and sent the whole file (${size}), more than the ` +
        `${limit.toLocaleString('en-US')} bytes taken whole. Serve the file from a server that supports ` +
        `HTTP Range requests (answers 206), or raise maxWholeBytes.`,
    );
  const declared = Number(res.headers.get('Content-Length') ?? NaN);
  if (declared > limit) {
    await discard(res);
    throw tooBig(`${declared.toLocaleString('en-US')} bytes`);
  }
  if (!res.body) return readBody(res, url);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limit) {
        await reader.cancel().catch(() => undefined);
        throw tooBig('size not declared');
      }
      chunks.push(value);
    }
  } catch (e) {
    throw wrapBodyError(e, res, url);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  if (Number.isFinite(declared) && declared !== total) {
    throw new HttpError(
      'short-body',
      res.status,
      url,
      `Content-Length says ${declared} bytes but the body had ${total}`,
    );
  }
  return out;
}

/**
 * A source over an HTTP(S) URL. The first request asks for `Range: bytes=0-(prefixBytes-1)` and learns the
 * size from `Content-Range` (or, where CORS hides that header, from a HEAD request's Content-Length). Each
 * later read is one Range request; an answer must be 206 with exactly the bytes asked for.
 * Fails with HttpError on non-2xx statuses, HTML pages, a server that ignores Range for a large file,
 * wrong lengths, or a file whose size changes between requests.
 */
export async function fetchSource(url: string, options: FetchSourceOptions = {}): Promise<ByteSource> {
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const prefixBytes = options.prefixBytes ?? 64 * 1024;
  const maxWholeBytes = options.maxWholeBytes ?? 16 * 1024 * 1024;
  if (!Number.isSafeInteger(prefixBytes) || prefixBytes < 8) {
    throw new RangeError(`prefixBytes must be an integer ≥ 8, got ${prefixBytes}`);
  }
  const name = options.name ?? redactUrl(url);

  const request = async (method: 'GET' | 'HEAD', range?: [number, number]): Promise<Response> => {
    const headers = new Headers(options.headers);
    if (range) headers.set('Range', `bytes=${range[0]}-${range[1]}`);
    try {
      return await doFetch(url, { method, headers, signal: options.signal });
    } catch (e) {
      if (isAbort(e) || options.signal?.aborted) throw e;
      const why = e instanceof Error ? e.message : String(e);
      throw new HttpError(
        'network',
        0,
        url,
        `the request failed (${why}); check the connection and the URL`,
        { cause: e },
      );
    }
  };

  /** Rejects error statuses and HTML pages, which are never the weights we asked for. */
  const checkAnswer = async (res: Response, what: string): Promise<void> => {
    if (!res.ok) {
      await discard(res);
      const hint =
        res.status === 401 || res.status === 403
          ? 'the file needs authorization (a gated model?); pass an access token in headers'
          : res.status === 404
            ? 'no file at this URL; check the repository and file name'
            : 'the server refused the request; try again later';
      throw new HttpError('status', res.status, url, `${what} answered ${res.status} ${res.statusText}: ${hint}`);
    }
    if (isHtml(res)) {
      await discard(res);
      throw new HttpError(
        'html',
        res.status,
        url,
        `${what} answered with an HTML page instead of the file (an error or login page?); check the URL`,
      );
    }
  };

  // The probe. 416 is how a server answers a range on an empty file.
  const probe = await request('GET', [0, prefixBytes - 1]);
  if (probe.status === 416) {
    const m = /^\s*bytes\s+\*\/0\s*$/i.exec(probe.headers.get('Content-Range') ?? '');
    await discard(probe);
    if (m) return bytesSource(new Uint8Array(0), name);
    throw new HttpError(
      'bad-range',
      416,
      url,
      'the server refused the first bytes of the file (416) without saying the file is empty',
    );
  }
  await checkAnswer(probe, 'the first request');
  if (probe.status === 200) {
    // The server ignored Range: fine for a small file, which we keep whole.
    return bytesSource(await readBounded(probe, url, maxWholeBytes), name);
  }
  if (probe.status !== 206) {
    await discard(probe);
    throw new HttpError(
      'status',
      probe.status,
      url,
      `the first request answered ${probe.status}, expected 206 Partial Content`,
    );
  }
  const range = parseContentRange(probe.headers.get('Content-Range'));
  if (typeof range === 'string') {
    await discard(probe);
    throw new HttpError('bad-range', 206, url, range);
  }
  const prefix = await readBody(probe, url);
  let size: number;
  if (range?.total !== undefined) {
    size = range.total;
  } else {
    // No total: CORS did not expose Content-Range, or the server sent `*`. Content-Length on HEAD is always readable.
    const head = await request('HEAD');
    await checkAnswer(head, 'the HEAD request');
    await discard(head);
    size = Number(head.headers.get('Content-Length') ?? NaN);
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new HttpError(
        'bad-range',
        head.status,
        url,
        'could not learn the file size: no Content-Range total and no Content-Length. A cross-origin server must ' +
          'list Content-Range in Access-Control-Expose-Headers.',
      );
    }
  }
  const expected = Math.min(prefixBytes, size);
  if ((range && (range.start !== 0 || range.end !== expected - 1)) || prefix.byteLength !== expected) {
    throw new HttpError(
      'short-body',
      206,
      url,
      `asked for bytes 0-${prefixBytes - 1} of a ${size}-byte file and got ${prefix.byteLength} bytes` +
        (range ? ` (Content-Range ${range.start}-${range.end})` : ''),
    );
  }

  const source: ByteSource = {
    name,
    size,
    read: async (offset, length) => {
      checkRange(source, offset, length);
      if (offset + length <= prefix.byteLength) return prefix.subarray(offset, offset + length);
      const last = offset + length - 1;
      const res = await request('GET', [offset, last]);
      await checkAnswer(res, `the request for bytes ${offset}-${last}`);
      if (res.status !== 206) {
        await discard(res);
        throw new HttpError(
          'range-not-supported',
          res.status,
          url,
          `the request for bytes ${offset}-${last} answered ${res.status} instead of 206: the server stopped honouring Range`,
        );
      }
      const r = parseContentRange(res.headers.get('Content-Range'));
      if (typeof r === 'string') {
        await discard(res);
        throw new HttpError('bad-range', 206, url, r);
      }
      if (r?.total !== undefined && r.total !== size) {
        await discard(res);
        throw new HttpError(
          'changed',
          206,
          url,
          `the file was ${size} bytes and is now ${r.total}: it changed on the server; load the model again`,
        );
      }
      if (r && (r.start !== offset || r.end !== last)) {
        await discard(res);
        throw new HttpError('bad-range', 206, url, `asked for bytes ${offset}-${last}, got ${r.start}-${r.end}`);
      }
      const body = await readBody(res, url);
      if (body.byteLength !== length) {
        throw new HttpError(
          'short-body',
          206,
          url,
          `asked for ${length} bytes at ${offset} and got ${body.byteLength}`,
        );
      }
      return body;
    },
  };
  return source;
}
