/** Typed errors of the generation API; each says what to change. */
export { InvalidRequestError } from '../chat/messages';
export { InvalidOptionError } from '../sampling/options';

/** The prompt does not leave room for even one new token in the context the model was loaded with. */
export class ContextWindowExceededError extends Error {
  override readonly name = 'ContextWindowExceededError';
  constructor(
    readonly promptTokens: number,
    readonly contextLength: number,
  ) {
    super(
      `The prompt is ${promptTokens} tokens but the context holds ${contextLength} (including the reply). ` +
        `Shorten the prompt or the conversation, or load the model with a larger contextLength.`,
    );
  }
}

/** The engine was disposed (or its device lost and not reloaded) and cannot serve requests. */
export class EngineDisposedError extends Error {
  override readonly name = 'EngineDisposedError';
  constructor() {
    super('This engine has been disposed. Create a new one with createEngine().');
  }
}
