/**
 * Errors across the worker boundary. Structured cloning keeps only `message` (and not even the class) of an
 * Error, so the worker sends name, message and the error's plain fields, and the UI side rebuilds an
 * instance of the same class: `instanceof DeviceLostError` and `e.reason` work as in the same thread.
 * The message is kept verbatim rather than recomposed by the constructor, so both sides read the same text.
 */
import { errorRow } from '../errors';
import type { SerializedError } from './protocol';

function cloneable(value: unknown): boolean {
  if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) return true;
  return Array.isArray(value) && value.every((v) => v === null || ['string', 'number', 'boolean'].includes(typeof v));
}

export function serializeError(error: unknown): SerializedError {
  if (!(error instanceof Error) && !(error instanceof DOMException)) {
    return { name: 'Error', message: String(error), fields: {} };
  }
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(error)) {
    if (key !== 'name' && key !== 'message' && cloneable(value)) fields[key] = value;
  }
  return { name: error.name, message: error.message, fields };
}

export function reviveError(serialized: SerializedError): Error {
  const { name, message, fields } = serialized;
  // AbortError is a DOMException wherever it comes from (fetch, AbortSignal.reason, the request queue).
  if (name === 'AbortError') return new DOMException(message, 'AbortError');
  const error = new Error(message);
  const row = errorRow(name);
  if (row) Reflect.setPrototypeOf(error, row.type.prototype);
  // The classes set `name` as an own field in their constructor, which did not run here.
  Object.defineProperty(error, 'name', { value: name, enumerable: true, configurable: true, writable: false });
  Object.assign(error, fields);
  return error;
}
