/**
 * Errors across the worker boundary. Structured cloning keeps only `message` (and not even the class) of an
 * Error, so the worker sends name, message and the error's plain fields, and the UI side rebuilds an
 * instance of the same class: `instanceof DeviceLostError` and `e.reason` work as in the same thread.
 * The message is kept verbatim rather than recomposed by the constructor, so both sides read the same text.
 */
import { ChatTemplateError } from '../chat/template';
import { ContextWindowExceededError, EngineDisposedError, InvalidOptionError, InvalidRequestError } from '../engine/errors';
import { HttpError, SafetensorsError } from '../formats/errors';
import {
  DeviceLostError,
  GpuOutOfMemoryError,
  GpuValidationError,
  LimitsExceededError,
  ShaderCompileError,
  ShapeError,
  WebGPUUnavailableError,
} from '../gpu/errors';
import { ModelConfigError, UnsupportedModelError } from '../model/config';
import { ModelFileMissingError } from '../model/files';
import { ContextFullError } from '../model/forward';
import { ModelWeightsError } from '../model/weights';
import { DownloadError, IntegrityError, StorageQuotaError } from '../storage';
import { TokenizerError } from '../tokenizer/tokenizer';
import type { SerializedError } from './protocol';

/**
 * Every typed error the engine and the model cache throw, by the `name` their instances carry. Spelled out
 * because a minified build renames the classes themselves.
 */
const ERROR_CLASSES = new Map<string, { prototype: Error }>([
  ['ChatTemplateError', ChatTemplateError],
  ['ContextFullError', ContextFullError],
  ['ContextWindowExceededError', ContextWindowExceededError],
  ['DeviceLostError', DeviceLostError],
  ['DownloadError', DownloadError],
  ['EngineDisposedError', EngineDisposedError],
  ['GpuOutOfMemoryError', GpuOutOfMemoryError],
  ['GpuValidationError', GpuValidationError],
  ['HttpError', HttpError],
  ['IntegrityError', IntegrityError],
  ['InvalidOptionError', InvalidOptionError],
  ['InvalidRequestError', InvalidRequestError],
  ['LimitsExceededError', LimitsExceededError],
  ['ModelConfigError', ModelConfigError],
  ['ModelFileMissingError', ModelFileMissingError],
  ['ModelWeightsError', ModelWeightsError],
  ['SafetensorsError', SafetensorsError],
  ['ShaderCompileError', ShaderCompileError],
  ['ShapeError', ShapeError],
  ['StorageQuotaError', StorageQuotaError],
  ['TokenizerError', TokenizerError],
  ['UnsupportedModelError', UnsupportedModelError],
  ['WebGPUUnavailableError', WebGPUUnavailableError],
]);

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
  const known = ERROR_CLASSES.get(name);
  if (known) Reflect.setPrototypeOf(error, known.prototype);
  // The classes set `name` as an own field in their constructor, which did not run here.
  Object.defineProperty(error, 'name', { value: name, enumerable: true, configurable: true, writable: false });
  Object.assign(error, fields);
  return error;
}
