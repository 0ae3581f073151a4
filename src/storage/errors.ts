/**
 * Typed errors of the download cache. `code` (DownloadError) says which rule was broken, so callers and
 * tests branch on it; messages name the file and say what the user can do.
 */
import { redactUrl } from '../formats/errors';

export type DownloadErrorCode =
  /** A non-2xx answer (404 for a required file, 403 for a gated repo, 5xx, ...); see `status`. */
  | 'http-status'
  /** An HTML page (Content-Type, or a body starting with `<!doctype`/`<html`) where a model file was expected. */
  | 'html'
  /** A 206 Partial Content answer to a request that asked for no range. */
  | 'unexpected-partial'
  /** A 206 answer whose Content-Range is missing or not the range asked for; or a server ignoring Range for a repair. */
  | 'bad-range'
  /** The body is shorter than the size the server declared (a cut-off download), or a range has the wrong length. */
  | 'size-mismatch'
  /** The request or the body stream failed (offline, CORS, connection reset); see `cause`. */
  | 'network'
  /** The caller's signal aborted the download; verified chunks are kept for the next attempt. */
  | 'aborted';

const HINTS: Record<DownloadErrorCode, string> = {
  'http-status': 'Check the model URL (and access rights for gated models).',
  html: 'The server sent a web page (an error or login page?); check the model URL.',
  'unexpected-partial': 'The server or a proxy misbehaves; try again or use another mirror.',
  'bad-range': 'The server does not honour HTTP Range requests correctly; try again or use another mirror.',
  'size-mismatch': 'The download was cut off or the file changed on the server; try again to resume.',
  network: 'Check the connection and try again; the download resumes where it stopped.',
  aborted: 'Start it again to resume where it stopped.',
};

export class DownloadError extends Error {
  override readonly name = 'DownloadError';
  constructor(
    readonly code: DownloadErrorCode,
    /** The model file the error is about; undefined when it is about the whole download (an abort while waiting). */
    readonly file: string | undefined,
    /** The URL as requested. Messages carry it without query string, since that may hold access tokens. */
    readonly url: string,
    detail: string,
    /** The HTTP status, or 0 when there was no answer. */
    readonly status = 0,
    options: { cause?: unknown } = {},
  ) {
    super(`${file ?? 'download'} (${redactUrl(url)}): ${detail} ${HINTS[code]}`, options);
  }
}

/** A cached chunk failed its size or SHA-256 check and could not be fetched again (offline, or changed upstream). */
export class IntegrityError extends Error {
  override readonly name = 'IntegrityError';
  constructor(
    readonly modelId: string,
    readonly file: string,
    /** The chunk's index within the file. */
    readonly chunk: number,
    /** What was wrong with the stored chunk. */
    readonly problem: string,
    options: { cause?: unknown } = {},
  ) {
    const why = options.cause instanceof Error ? ` (${options.cause.message})` : '';
    super(
      `${modelId}: cached chunk ${chunk} of ${file} is damaged (${problem}) and could not be downloaded again${why}. ` +
        'Go online and load the model again to repair it, or delete the cached model.',
      options,
    );
  }
}

/** The browser's storage quota is too small for the model, found before downloading or on a write. */
export class StorageQuotaError extends Error {
  override readonly name = 'StorageQuotaError';
  constructor(
    readonly modelId: string,
    /** Bytes the model still needs to store. */
    readonly neededBytes: number,
    /** `navigator.storage.estimate()` at the time, where the browser has it. */
    readonly usageBytes: number | undefined,
    readonly quotaBytes: number | undefined,
    options: { cause?: unknown } = {},
  ) {
    const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    const where =
      usageBytes !== undefined && quotaBytes !== undefined
        ? `this site uses ${mb(usageBytes)} of its ${mb(quotaBytes)} quota (${mb(Math.max(0, quotaBytes - usageBytes))} free)`
        : 'the browser does not report its storage quota';
    super(
      `${modelId}: not enough storage: the model needs ${mb(neededBytes)} more and ${where}. ` +
        'Delete other cached models or free disk space, then try again.',
      options,
    );
  }
}
