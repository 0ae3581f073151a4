/**
 * Library errors as OpenAI's error objects and HTTP statuses, so the `openai` client raises the same
 * BadRequestError, NotFoundError or InternalServerError it would against the hosted API. The status follows
 * the error table's kind (src/errors.ts): 'request' and 'context' errors are the caller's (400).
 */
import { errorRow, type ErrorKind } from '../errors';

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export interface MappedError {
  status: number;
  body: OpenAIErrorBody;
}

/** Errors of this machine rather than the request: 503, worth retrying once the engine is reloaded. */
const UNAVAILABLE_KINDS = new Set<ErrorKind>(['no-webgpu', 'device-lost', 'gpu-memory']);

/** `InvalidOptionError` → `invalid_option`: OpenAI's codes are snake_case. */
function snakeCode(name: string): string {
  return name
    .replace(/Error$/, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

export function openAIError(status: number, type: string, message: string, param: string | null = null, code: string | null = null): MappedError {
  return { status, body: { error: { message, type, param, code } } };
}

/** The HTTP status and OpenAI error object for anything thrown while serving a request. */
export function mapError(error: unknown): MappedError {
  if (!(error instanceof Error)) return openAIError(500, 'server_error', String(error));
  const row = errorRow(error.name);
  const known = row !== undefined && error instanceof row.type;
  const param = (error as { param?: unknown; option?: unknown }).param ?? (error as { option?: unknown }).option;
  const paramText = typeof param === 'string' ? param : null;
  if (known && row.kind === 'context') return openAIError(400, 'invalid_request_error', error.message, 'messages', 'context_length_exceeded');
  if (known && row.kind === 'request') return openAIError(400, 'invalid_request_error', error.message, paramText, snakeCode(error.name));
  if (known && (UNAVAILABLE_KINDS.has(row.kind) || error.name === 'EngineDisposedError')) {
    return openAIError(503, 'server_error', error.message, null, snakeCode(error.name));
  }
  return openAIError(500, 'server_error', error.message, null, known ? snakeCode(error.name) : null);
}
