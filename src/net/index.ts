/** The network layer: one HTTP error type, watched requests, byte sources over URLs. */
export { HttpError, redactUrl, type HttpErrorCode } from './errors';
export { DEFAULT_STALL_SECONDS, MAX_TEXT_BYTES, fetchText, send, type HttpOptions } from './http';
export { fetchSource, type FetchSourceOptions } from './fetch-source';
