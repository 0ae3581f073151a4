/** The network layer: one HTTP error type, watched requests, byte sources over URLs. */
export { GatedModelError, HttpError, redactUrl, type HttpErrorCode } from './errors';
export { AccessTokenError, checkAccessToken, huggingFaceFetch, isHuggingFaceUrl } from './hf-token';
export { DEFAULT_STALL_SECONDS, MAX_TEXT_BYTES, fetchText, send, type HttpOptions } from './http';
export { fetchSource, type FetchSourceOptions } from './fetch-source';
