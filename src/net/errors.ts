/**
 * The one error type for HTTP: byte sources, the download cache and model files all throw HttpError, so a
 * caller branches on `code` (and `status`) whatever read the file. Aborts are not HttpErrors: they end with
 * the signal's reason (an AbortError), as everywhere else in the engine.
 */

import { isHuggingFaceUrl } from './hf-token';

export type HttpErrorCode =
  /** A non-2xx status (404, 403, 500, ...); see `status`. */
  | 'status'
  /** An HTML page (Content-Type, or a body starting with `<!doctype`/`<html`) where a model file was expected. */
  | 'html'
  /** The server ignored a Range request, and the file is too large to take whole. */
  | 'range-not-supported'
  /** Content-Range missing, malformed, or not the range asked for; or no way to learn the file size. */
  | 'bad-range'
  /** A 206 Partial Content answer to a request that asked for no range. */
  | 'unexpected-partial'
  /** The file's size or ETag changed between requests (replaced on the server). */
  | 'changed'
  /** The body has a different length than the headers promised (a cut-off transfer). */
  | 'short-body'
  /** A text file (config, tokenizer, index) larger than the cap for text files. */
  | 'too-large'
  /** No answer, or no body bytes, for longer than the stall timeout. */
  | 'stalled'
  /** The request or the body stream failed (offline, DNS, CORS, connection reset); see `cause`. */
  | 'network';

/** Codes where the same request may succeed later: the download cache resumes from the chunks it kept. */
const RETRYABLE: ReadonlySet<HttpErrorCode> = new Set(['short-body', 'stalled', 'network']);

/** The page of the Hugging Face repo a file URL is in, where its license is accepted; undefined elsewhere. */
export function huggingFaceRepoUrl(url: string): string | undefined {
  const repo = /^https:\/\/huggingface\.co\/([^/?#]+\/[^/?#]+)\/(?:resolve|tree|raw)\//.exec(url);
  return repo ? `https://huggingface.co/${repo[1]}` : undefined;
}

function hint(code: HttpErrorCode, status: number, url: string): string {
  switch (code) {
    case 'status':
      if (status === 404) return 'No file at this URL: check the model URL and the file name.';
      if ((status === 401 || status === 403) && isHuggingFaceUrl(url)) {
        return (
          `This Hugging Face repo is gated or private: sign in on huggingface.co, accept the model's license on ` +
          `${huggingFaceRepoUrl(url) ?? 'its page'}, then add an access token with read access (the Models panel, ` +
          'or HF_TOKEN for the CLI). If a token was given, check it.'
        );
      }
      if (status === 401 || status === 403) return 'Access denied (a gated model?): pass an access token in the request headers.';
      if (status === 429 || status >= 500) return 'The server is busy or failing; try again later.';
      return 'The server refused the request; check the model URL.';
    case 'html':
      return 'The server sent a web page (an error or login page?); check the model URL.';
    case 'range-not-supported':
      return 'Serve the file from a server that supports HTTP Range requests (answers 206).';
    case 'bad-range':
    case 'unexpected-partial':
      return 'The server or a proxy does not honour HTTP Range requests correctly; try again or use another mirror.';
    case 'changed':
      return 'The file changed on the server; load the model again.';
    case 'too-large':
      return 'This is not the file the model needs; check the model URL.';
    case 'short-body':
    case 'stalled':
    case 'network':
      return 'Check the connection and try again; a download resumes where it stopped.';
  }
}

export class HttpError extends Error {
  override readonly name: string = 'HttpError';
  /** The model file the error is about, where the request was for one. */
  readonly file: string | undefined;
  constructor(
    readonly code: HttpErrorCode,
    /** The HTTP status, or 0 when there was no answer. */
    readonly status: number,
    /** The URL as requested. Messages carry it without query string, since that may hold access tokens. */
    readonly url: string,
    detail: string,
    options: { cause?: unknown; file?: string } = {},
  ) {
    const where = options.file === undefined ? redactUrl(url) : `${options.file} (${redactUrl(url)})`;
    super(`${where}: ${detail} ${hint(code, status, url)}`, { cause: options.cause });
    this.file = options.file;
  }

  /** Whether trying again may succeed (a download then resumes); false where the URL or server must change. */
  get retryable(): boolean {
    return RETRYABLE.has(this.code) || (this.code === 'status' && (this.status === 429 || this.status >= 500));
  }
}

/**
 * A 401 or 403 from huggingface.co: the repo is gated and its license not accepted by the token's account, or
 * private, or the request carried no token or a wrong one.
 */
export class GatedModelError extends HttpError {
  override readonly name: string = 'GatedModelError';
  /** The repo's page, where its license is accepted (undefined when the URL names no repo). */
  readonly repoUrl: string | undefined;
  constructor(status: 401 | 403, url: string, detail: string, options: { cause?: unknown; file?: string } = {}) {
    super('status', status, url, detail, options);
    this.repoUrl = huggingFaceRepoUrl(url);
  }
}

/** The URL without query and fragment (signed URLs carry credentials there). */
export function redactUrl(url: string): string {
  const cut = url.search(/[?#]/);
  return cut < 0 ? url : url.slice(0, cut);
}
