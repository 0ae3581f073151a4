/**
 * One HTTP request at a time, watched: every wait (for the answer, then for each piece of the body) fails
 * with HttpError 'stalled' after `stallSeconds` without progress, and ends at once with the signal's reason
 * when the caller aborts, even where a fetch ignores its signal. Failures become HttpError; bodies are read
 * bounded, and the answers every file must pass (status, no HTML page) are checked in one place.
 */
import { GatedModelError, HttpError } from './errors';
import { isHuggingFaceUrl } from './hf-token';

/** Seconds without an answer or a body byte before a request fails as stalled. */
export const DEFAULT_STALL_SECONDS = 30;
/** The most bytes read for a text file (config, tokenizer, index): real tokenizers are under 35 MiB. */
export const MAX_TEXT_BYTES = 64 * 2 ** 20;

export interface HttpOptions {
  /** The fetch to use (tests, auth wrappers); default the global one. */
  fetch?: typeof globalThis.fetch;
  /** Aborts the request and any body read; the signal's reason is thrown as is. */
  signal?: AbortSignal;
  /** Extra request headers, e.g. `Authorization` for gated repositories. */
  headers?: Record<string, string>;
  /** Seconds without progress before HttpError 'stalled' (default 30); the request can simply be made again. */
  stallSeconds?: number;
}

export interface HttpRequest {
  method?: 'GET' | 'HEAD';
  /** Bytes `start` to `end` inclusive; no `end` asks for the rest of the file. */
  range?: readonly [start: number, end?: number];
  /** The model file asked for, named in errors. */
  file?: string;
  /** Bypass the browser's HTTP cache (the download cache keeps its own copy). */
  noStore?: boolean;
}

/** A body size limit and the error to throw past it (`size` says what was seen: declared or received). */
export interface BodyLimit {
  bytes: number;
  error: (size: string) => HttpError;
}

const ignore = (): void => undefined;

export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The request was aborted', 'AbortError');
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Ties one request's waits to the caller's signal and the stall timeout. */
class Watch {
  private readonly controller = new AbortController();

  constructor(
    private readonly signal: AbortSignal | undefined,
    private readonly stallMs: number,
  ) {}

  /** What fetch gets: aborted on the caller's abort and on a stall, which also tears down the body stream. */
  get fetchSignal(): AbortSignal {
    return this.controller.signal;
  }

  /** `pending`, or a rejection with the signal's reason on abort, or `stalled()` after stallMs. */
  async wait<T>(pending: Promise<T>, stalled: () => HttpError): Promise<T> {
    // The loser of the race may reject later; that rejection is expected and ignored.
    pending.catch(ignore);
    const signal = this.signal;
    if (signal?.aborted) {
      this.controller.abort(abortReason(signal));
      throw abortReason(signal);
    }
    let interrupt: (e: unknown) => void = ignore;
    const interrupted = new Promise<never>((_, reject) => (interrupt = reject));
    const onAbort = () => {
      const reason = abortReason(signal as AbortSignal);
      this.controller.abort(reason);
      interrupt(reason);
    };
    signal?.addEventListener('abort', onAbort);
    const timer = setTimeout(() => {
      const e = stalled();
      this.controller.abort(e);
      interrupt(e);
    }, this.stallMs);
    try {
      return await Promise.race([pending, interrupted]);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** A failure of fetch or of the body as thrown to the caller: aborts and our own errors pass as they are. */
  failure(e: unknown, network: (why: string) => HttpError): unknown {
    if (this.signal?.aborted) return abortReason(this.signal);
    if (e instanceof HttpError) return e;
    return network(describe(e));
  }
}

/** One answer; its body is read through the same watch as the request. */
export class Answer {
  constructor(
    readonly res: Response,
    readonly url: string,
    readonly file: string | undefined,
    private readonly watch: Watch,
    private readonly stallSeconds: number,
  ) {}

  get status(): number {
    return this.res.status;
  }

  get ok(): boolean {
    return this.res.ok;
  }

  header(name: string): string | null {
    return this.res.headers.get(name);
  }

  /** An HttpError about this answer (its status, URL and file). */
  error(code: HttpError['code'], detail: string, cause?: unknown): HttpError {
    const status = this.res.status;
    if (code === 'status' && (status === 401 || status === 403) && isHuggingFaceUrl(this.url)) {
      // A typed error of its own: the fix (a license, a token) is the user's, not the URL's.
      return new GatedModelError(status, this.url, detail, { file: this.file, cause });
    }
    return new HttpError(code, status, this.url, detail, { file: this.file, cause });
  }

  /** Whether the server labels the body an HTML page, which is never a model file. */
  isHtml(): boolean {
    return /^\s*(text\/html|application\/xhtml\+xml)/i.test(this.res.headers.get('Content-Type') ?? '');
  }

  /** Content-Length as a safe integer, or undefined when absent or malformed. */
  contentLength(): number | undefined {
    const v = this.res.headers.get('Content-Length');
    if (v === null || !/^\s*\d+\s*$/.test(v)) return undefined;
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : undefined;
  }

  /** Rejects error statuses and HTML pages (`what` names the request in the message); the body is released first. */
  async check(what = 'the request'): Promise<void> {
    if (!this.res.ok) {
      await this.discard();
      throw this.error('status', `${what} answered ${this.res.status} ${this.res.statusText}.`.replace(' .', '.'));
    }
    if (this.isHtml()) {
      await this.discard();
      throw this.error('html', `${what} answered with an HTML page instead of the file.`);
    }
  }

  /** Releases the body unread: an unread body holds its connection until garbage-collected. */
  async discard(): Promise<void> {
    await this.res.body?.cancel().catch(ignore);
  }

  /** The body piece by piece; each wait for a piece is watched. Leaving the loop early releases the body. */
  async *chunks(): AsyncGenerator<Uint8Array, void, undefined> {
    const reader = this.res.body?.getReader();
    if (!reader) return;
    let finished = false;
    try {
      for (;;) {
        let next: ReadableStreamReadResult<Uint8Array>;
        try {
          next = await this.watch.wait(reader.read(), () => this.error('stalled', `no bytes arrived for ${this.stallSeconds} s.`));
        } catch (e) {
          throw this.watch.failure(e, (why) => this.error('network', `the transfer broke off (${why}).`, e));
        }
        if (next.done) break;
        yield next.value;
      }
      finished = true;
    } finally {
      if (!finished) await reader.cancel().catch(ignore);
    }
  }

  /** The whole body in one array, refused past `limit` (declared or received) before it is all in memory. */
  async bytes(limit?: BodyLimit): Promise<Uint8Array<ArrayBuffer>> {
    const declared = this.contentLength();
    if (limit && declared !== undefined && declared > limit.bytes) {
      await this.discard();
      throw limit.error(`${declared.toLocaleString('en-US')} bytes`);
    }
    const pieces: Uint8Array[] = [];
    let total = 0;
    for await (const piece of this.chunks()) {
      total += piece.byteLength;
      if (limit && total > limit.bytes) throw limit.error(`more than ${limit.bytes.toLocaleString('en-US')} bytes`);
      pieces.push(piece);
    }
    // A content-encoded answer declares its compressed length, which the decoded body exceeds; shorter is cut off.
    if (declared !== undefined && total < declared) {
      throw this.error('short-body', `Content-Length says ${declared} bytes but the body had ${total}.`);
    }
    return concat(pieces, total);
  }
}

function concat(pieces: readonly Uint8Array[], total: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** Sends one request; fails with HttpError 'network' or 'stalled', or the signal's reason. Statuses are not checked here. */
export async function send(url: string, request: HttpRequest, options: HttpOptions = {}): Promise<Answer> {
  const stallSeconds = options.stallSeconds ?? DEFAULT_STALL_SECONDS;
  if (!(stallSeconds > 0)) throw new RangeError(`stallSeconds must be positive, got ${stallSeconds}`);
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const headers = new Headers(options.headers);
  if (request.range) headers.set('Range', `bytes=${request.range[0]}-${request.range[1] ?? ''}`);
  const watch = new Watch(options.signal, stallSeconds * 1000);
  const file = request.file;
  const init: RequestInit = { method: request.method ?? 'GET', headers, signal: watch.fetchSignal };
  if (request.noStore) init.cache = 'no-store';
  let res: Response;
  try {
    res = await watch.wait(doFetch(url, init), () => new HttpError('stalled', 0, url, `no answer for ${stallSeconds} s.`, { file }));
  } catch (e) {
    throw watch.failure(e, (why) => new HttpError('network', 0, url, `the request failed (${why}).`, { file, cause: e }));
  }
  return new Answer(res, url, file, watch, stallSeconds);
}

/** A text file read whole: undefined for a 404, HttpError 'too-large' past `maxBytes` (default MAX_TEXT_BYTES). */
export async function fetchText(
  url: string,
  options: HttpOptions & { file?: string; maxBytes?: number } = {},
): Promise<string | undefined> {
  const answer = await send(url, { file: options.file }, options);
  if (answer.status === 404) {
    await answer.discard();
    return undefined;
  }
  await answer.check();
  const bytes = await answer.bytes(textLimit(answer, options.maxBytes ?? MAX_TEXT_BYTES));
  return new TextDecoder().decode(bytes);
}

/** The cap on a text file's size, with an error that states it. */
export function textLimit(answer: Pick<Answer, 'error'>, maxBytes = MAX_TEXT_BYTES): BodyLimit {
  return { bytes: maxBytes, error: (size) => textTooLarge(answer, size, maxBytes) };
}

/** `size` says what was seen: a declared length or "more than N bytes". */
export function textTooLarge(answer: Pick<Answer, 'error'>, size: string, maxBytes: number): HttpError {
  return answer.error('too-large', `the text file is ${size}, over the ${formatMiB(maxBytes)} cap for text files.`);
}

export function formatMiB(bytes: number): string {
  const mib = bytes / 2 ** 20;
  return `${Number.isInteger(mib) ? mib : mib.toFixed(1)} MiB`;
}

export interface ContentRange {
  start: number;
  end: number;
  /** undefined when the server sent `*` (size unknown). */
  total: number | undefined;
}

/** `bytes a-b/N` or `bytes a-b/*`; undefined when absent, a string saying what is wrong when malformed. */
export function parseContentRange(header: string | null): ContentRange | undefined | string {
  if (header === null) return undefined;
  const m = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(header);
  if (!m) return `malformed Content-Range ${JSON.stringify(header.slice(0, 100))}`;
  const start = Number(m[1]);
  const end = Number(m[2]);
  const total = m[3] === '*' ? undefined : Number(m[3]);
  const safe = (x: number | undefined) => x === undefined || Number.isSafeInteger(x);
  if (!safe(start) || !safe(end) || !safe(total)) return `Content-Range ${JSON.stringify(header)} has numbers beyond 2^53`;
  if (end < start || (total !== undefined && end >= total)) return `inconsistent Content-Range ${JSON.stringify(header)}`;
  return { start, end, total };
}

/** Whether bytes start like an HTML page (a 200 error page with a binary Content-Type). */
export function looksLikeHtml(bytes: Uint8Array): boolean {
  // TextDecoder drops a leading byte-order mark.
  const head = new TextDecoder().decode(bytes.subarray(0, 64)).trimStart().toLowerCase();
  return head.startsWith('<!doctype') || head.startsWith('<html');
}
