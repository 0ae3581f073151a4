/** Typed errors of the embeddings and fill-mask API. */

/**
 * The loaded model cannot do what was asked: fill-mask on a checkpoint without a masked-LM head (or on a decoder),
 * embeddings from a decoder whose repo asks for a pooling that needs every token's hidden state, or, in a worker,
 * a request for the other kind of engine than the one loaded.
 */
export class UnsupportedTaskError extends Error {
  override readonly name = 'UnsupportedTaskError';
  constructor(
    readonly task: 'fill-mask' | 'embeddings' | 'generation',
    readonly reason: string,
  ) {
    super(`This model cannot do ${task}: ${reason}`);
  }
}
