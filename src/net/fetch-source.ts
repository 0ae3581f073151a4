/** A ByteSource over an HTTP(S) URL, read with Range requests so a model larger than one ArrayBuffer streams. */
import { bytesSource, checkRange, type ByteSource } from '../formats/sources';
import { redactUrl } from './errors';
import { parseContentRange, send, type Answer, type ContentRange, type HttpOptions } from './http';

export interface FetchSourceOptions extends HttpOptions {
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

/**
 * A source over an HTTP(S) URL. The first request asks for `Range: bytes=0-(prefixBytes-1)` and learns the
 * size from `Content-Range` (or, where CORS hides that header, from a HEAD request's Content-Length). Each
 * later read is one Range request; an answer must be 206 with exactly the bytes asked for.
 * Fails with HttpError on non-2xx statuses, HTML pages, a server that ignores Range for a large file,
 * wrong lengths, a stall, or a file whose size changes between requests.
 */
export async function fetchSource(url: string, options: FetchSourceOptions = {}): Promise<ByteSource> {
  const prefixBytes = options.prefixBytes ?? 64 * 1024;
  const maxWholeBytes = options.maxWholeBytes ?? 16 * 1024 * 1024;
  if (!Number.isSafeInteger(prefixBytes) || prefixBytes < 8) {
    throw new RangeError(`prefixBytes must be an integer ≥ 8, got ${prefixBytes}`);
  }
  const name = options.name ?? redactUrl(url);

  // The probe. 416 is how a server answers a range on an empty file.
  const probe = await send(url, { range: [0, prefixBytes - 1] }, options);
  if (probe.status === 416) {
    const empty = /^\s*bytes\s+\*\/0\s*$/i.test(probe.header('Content-Range') ?? '');
    await probe.discard();
    if (empty) return bytesSource(new Uint8Array(0), name);
    throw probe.error('bad-range', 'the server refused the first bytes of the file (416) without saying the file is empty.');
  }
  await probe.check('the first request');
  if (probe.status === 200) {
    // The server ignored Range: fine for a small file, which we keep whole.
    const whole = await probe.bytes({
      bytes: maxWholeBytes,
      error: (size) =>
        probe.error(
          'range-not-supported',
          `the server ignored the Range request and sent the whole file (${size}), more than the ` +
            `${maxWholeBytes.toLocaleString('en-US')} bytes taken whole (maxWholeBytes).`,
        ),
    });
    return bytesSource(whole, name);
  }
  if (probe.status !== 206) {
    await probe.discard();
    throw probe.error('status', `the first request answered ${probe.status}, expected 206 Partial Content.`);
  }
  const range = await contentRange(probe);
  const prefix = await probe.bytes();
  let size: number;
  if (range?.total !== undefined) {
    size = range.total;
  } else {
    // No total: CORS did not expose Content-Range, or the server sent `*`. Content-Length on HEAD is always readable.
    const head = await send(url, { method: 'HEAD' }, options);
    await head.check('the HEAD request');
    await head.discard();
    const length = head.contentLength();
    if (length === undefined) {
      throw head.error(
        'bad-range',
        'could not learn the file size: no Content-Range total and no Content-Length. A cross-origin server must ' +
          'list Content-Range in Access-Control-Expose-Headers.',
      );
    }
    size = length;
  }
  const expected = Math.min(prefixBytes, size);
  if ((range && (range.start !== 0 || range.end !== expected - 1)) || prefix.byteLength !== expected) {
    throw probe.error(
      'short-body',
      `asked for bytes 0-${prefixBytes - 1} of a ${size}-byte file and got ${prefix.byteLength} bytes` +
        (range ? ` (Content-Range ${range.start}-${range.end}).` : '.'),
    );
  }

  const source: ByteSource = {
    name,
    size,
    read: async (offset, length) => {
      checkRange(source, offset, length);
      if (offset + length <= prefix.byteLength) return prefix.subarray(offset, offset + length);
      const last = offset + length - 1;
      const res = await send(url, { range: [offset, last] }, options);
      await res.check(`the request for bytes ${offset}-${last}`);
      if (res.status !== 206) {
        await res.discard();
        throw res.error(
          'range-not-supported',
          `the request for bytes ${offset}-${last} answered ${res.status} instead of 206: the server stopped honouring Range.`,
        );
      }
      const r = await contentRange(res);
      if (r?.total !== undefined && r.total !== size) {
        await res.discard();
        throw res.error('changed', `the file was ${size} bytes and is now ${r.total}.`);
      }
      if (r && (r.start !== offset || r.end !== last)) {
        await res.discard();
        throw res.error('bad-range', `asked for bytes ${offset}-${last}, got ${r.start}-${r.end}.`);
      }
      const body = await res.bytes();
      if (body.byteLength !== length) {
        throw res.error('short-body', `asked for ${length} bytes at ${offset} and got ${body.byteLength}.`);
      }
      return body;
    },
  };
  return source;
}

/** The answer's Content-Range; HttpError 'bad-range' (the body released) when it is malformed. */
async function contentRange(answer: Answer): Promise<ContentRange | undefined> {
  const range = parseContentRange(answer.header('Content-Range'));
  if (typeof range !== 'string') return range;
  await answer.discard();
  throw answer.error('bad-range', `${range}.`);
}
