import type { GenerationResult } from './types';

export interface PendingResult {
  readonly result: Promise<GenerationResult>;
  settle(result: GenerationResult): void;
  fail(error: unknown): void;
}

/**
 * The `result` of a GenerationStream, settled by whoever runs the generation (the engine, or the worker
 * client for the engine in its worker). Its rejection counts as handled: a consumer that only iterates gets
 * the error from the iterator instead of an unhandled rejection.
 */
export function pendingResult(): PendingResult {
  let settle!: (result: GenerationResult) => void;
  let fail!: (error: unknown) => void;
  const result = new Promise<GenerationResult>((resolve, reject) => ((settle = resolve), (fail = reject)));
  result.catch(() => {});
  return { result, settle, fail };
}

/** What `result` rejects with when the consumer leaves the stream before it ends. */
export function consumerStopped(): DOMException {
  return new DOMException('The consumer stopped reading the stream', 'AbortError');
}
