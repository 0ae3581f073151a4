/** Typed errors of the generation API; each says what to change. */
export { InvalidRequestError } from '../chat/messages';
export { InvalidOptionError } from '../sampling/options';
export { ContextWindowExceededError } from '../model/kv-cache';

/** The engine (or a model under it) was disposed, or its device lost and not reloaded, and cannot serve requests. */
export class EngineDisposedError extends Error {
  override readonly name = 'EngineDisposedError';
  constructor(message = 'This engine has been disposed. Create a new one with createEngine().') {
    super(message);
  }
}
