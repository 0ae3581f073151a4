/**
 * The UI-thread half: createWorkerEngine() gives a ChatEngine whose calls are messages to a worker running
 * serveEngine(). Streams arrive chunk by chunk, AbortSignals become `abort` messages, and typed errors are
 * rebuilt on this side by name, so callers cannot tell it from an engine in their own thread.
 */
import { EngineDisposedError } from '../engine/errors';
import { consumerStopped, pendingResult } from '../engine/pending-result';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  GenerateOptions,
  GenerationDelta,
  GenerationStream,
  RequestOptions,
} from '../engine/types';
import { DeviceLostError } from '../gpu/errors';
import type { ChatEngine } from './chat-engine';
import { reviveError, serializeError } from './errors';
import { WorkerStartError, type ClientMessage, type EngineInfo, type LoadEngineOptions, type LoadProgress, type WorkerMessage } from './protocol';

/** How long dispose() lets the worker free the GPU memory itself before terminating it. */
const DISPOSE_TIMEOUT_MS = 5000;

export interface WorkerEngineOptions extends LoadEngineOptions {
  /** A worker running serveEngine(); the engine owns it from now on and terminates it on dispose or failure. */
  worker: Worker;
  onProgress?: (progress: LoadProgress) => void;
  /** Cancels the load (the download keeps what it has: the cache resumes it next time). */
  signal?: AbortSignal;
}

/** A queue between the message handler (pushing) and one async iterator (pulling). */
class Channel<T> {
  private readonly items: T[] = [];
  private ended = false;
  private error: { value: unknown } | undefined;
  private abandoned = false;
  private wake: (() => void) | undefined;

  push(item: T): void {
    if (this.abandoned) return;
    this.items.push(item);
    this.notify();
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  fail(error: unknown): void {
    this.error = { value: error };
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Items until end or failure; `onAbandon` runs when the consumer stops early (break, return, throw). */
  async *drain(onAbandon: () => void): AsyncGenerator<T> {
    let finished = false;
    try {
      for (;;) {
        if (this.items.length > 0) {
          yield this.items.shift()!;
          continue;
        }
        if (this.error) {
          finished = true;
          throw this.error.value;
        }
        if (this.ended) {
          finished = true;
          return;
        }
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      if (!finished) {
        this.abandoned = true;
        this.items.length = 0;
        onAbandon();
      }
    }
  }
}

export async function createWorkerEngine(url: string, options: WorkerEngineOptions): Promise<ChatEngine> {
  const { worker, onProgress, signal, ...loadOptions } = options;
  const handlers = new Map<number, (message: WorkerMessage) => void>();
  let nextId = 1;
  /** Once set (the worker crashed, or the engine was disposed), every request fails with it. */
  let dead: Error | undefined;
  let resolveLost!: (error: DeviceLostError) => void;
  const lost = new Promise<DeviceLostError>((resolve) => (resolveLost = resolve));
  let resolveReady!: () => void;
  let rejectReady!: (error: Error) => void;
  const ready = new Promise<void>((resolve, reject) => ((resolveReady = resolve), (rejectReady = reject)));

  let started = false;
  const send = (message: ClientMessage) => worker.postMessage(message);

  function kill(error: Error): void {
    dead ??= error;
    rejectReady(error);
    for (const [id, handler] of handlers) handler({ type: 'error', id, error: serializeError(error) });
    handlers.clear();
  }

  /** Registers the handler of request `id`, or answers it at once with the error that killed the worker. */
  function listen(id: number, handler: (message: WorkerMessage) => void): void {
    if (dead) handler({ type: 'error', id, error: serializeError(dead) });
    else handlers.set(id, handler);
  }

  /** Sends `abort` for request `id` when `signal` fires; returns the cleanup. Call after sending the request. */
  function forwardAbort(id: number, abortSignal: AbortSignal | undefined): () => void {
    if (!abortSignal) return () => {};
    const onAbort = () => {
      if (handlers.has(id)) send({ type: 'abort', id });
    };
    if (abortSignal.aborted) onAbort();
    abortSignal.addEventListener('abort', onAbort, { once: true });
    return () => abortSignal.removeEventListener('abort', onAbort);
  }

  worker.addEventListener('message', (event: MessageEvent<WorkerMessage>) => {
    const message = event.data;
    switch (message.type) {
      case 'ready':
        started = true;
        return resolveReady();
      case 'device-lost': {
        const error = reviveError(message.error);
        if (error instanceof DeviceLostError) resolveLost(error);
        return;
      }
      default:
        return handlers.get(message.id)?.(message);
    }
  });
  // A script that fails to load (404, a content security policy) fires a plain Event with no message.
  worker.addEventListener('error', (event: Event) => {
    const detail = event instanceof ErrorEvent && event.message ? event.message : 'its script could not be loaded or run';
    kill(started ? new Error(`The engine worker failed: ${detail}.`) : new WorkerStartError(`The engine worker did not start: ${detail}.`));
  });
  worker.addEventListener('messageerror', () => kill(new Error('The engine worker sent a message that could not be read.')));

  let info: EngineInfo;
  try {
    signal?.throwIfAborted();
    const aborted = new Promise<never>((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason), { once: true }));
    await Promise.race([ready, aborted]);
    info = await new Promise<EngineInfo>((resolve, reject) => {
      const id = nextId++;
      let stopForwarding = () => {};
      listen(id, (message) => {
        switch (message.type) {
          case 'progress':
            return onProgress?.(message.progress);
          case 'loaded':
            handlers.delete(id);
            stopForwarding();
            return resolve(message.info);
          case 'error':
            handlers.delete(id);
            stopForwarding();
            return reject(reviveError(message.error));
        }
      });
      send({ type: 'load', id, url, options: loadOptions });
      stopForwarding = forwardAbort(id, signal);
    });
  } catch (e) {
    worker.terminate();
    throw e;
  }

  function create(request: ChatCompletionRequest & { stream: true }, options?: RequestOptions): Promise<AsyncIterable<ChatCompletionChunk>>;
  function create(request: ChatCompletionRequest & { stream?: false | null }, options?: RequestOptions): Promise<ChatCompletion>;
  function create(request: ChatCompletionRequest, options?: RequestOptions): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;
  function create(request: ChatCompletionRequest, requestOptions: RequestOptions = {}): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
    const { signal: requestSignal, ...wire } = request;
    const abortSignal = requestOptions.signal ?? requestSignal;
    const id = nextId++;
    const chunks = new Channel<ChatCompletionChunk>();
    return new Promise((resolve, reject) => {
      let accepted = false;
      let stopForwarding = () => {};
      const finish = () => {
        handlers.delete(id);
        stopForwarding();
      };
      listen(id, (message) => {
        switch (message.type) {
          case 'accepted':
            accepted = true;
            return resolve(
              chunks.drain(() => {
                if (handlers.has(id)) send({ type: 'abort', id });
              }),
            );
          case 'chunk':
            return chunks.push(message.chunk);
          case 'completion':
            return resolve(message.completion);
          case 'done':
            finish();
            return chunks.end();
          case 'error': {
            finish();
            const error = reviveError(message.error);
            return accepted ? chunks.fail(error) : reject(error);
          }
        }
      });
      if (handlers.has(id)) {
        send({ type: 'chat', id, request: wire });
        stopForwarding = forwardAbort(id, abortSignal);
      }
    });
  }

  function generate(prompt: string | readonly number[], generateOptions: GenerateOptions = {}): GenerationStream {
    const { signal: abortSignal, ...wire } = generateOptions;
    const id = nextId++;
    const deltas = new Channel<GenerationDelta>();
    const { result, settle, fail } = pendingResult();
    let stopForwarding = () => {};
    listen(id, (message) => {
      switch (message.type) {
        case 'delta':
          return deltas.push(message.delta);
        case 'generation-result':
          return settle(message.result);
        case 'done':
          handlers.delete(id);
          stopForwarding();
          return deltas.end();
        case 'error': {
          handlers.delete(id);
          stopForwarding();
          const error = reviveError(message.error);
          fail(error);
          return deltas.fail(error);
        }
      }
    });
    if (handlers.has(id)) {
      send({ type: 'generate', id, prompt: typeof prompt === 'string' ? prompt : [...prompt], options: wire });
      stopForwarding = forwardAbort(id, abortSignal);
    }
    const iterator = deltas.drain(() => {
      if (handlers.has(id)) send({ type: 'abort', id });
      fail(consumerStopped());
    });
    return { result, [Symbol.asyncIterator]: () => iterator };
  }

  return {
    info,
    chat: { completions: { create } },
    generate,
    lost,
    simulateDeviceLoss: () => send({ type: 'simulate-device-loss' }),
    async dispose() {
      if (dead) return;
      await new Promise<void>((resolve) => {
        const id = nextId++;
        listen(id, (message) => {
          if (message.type === 'done' || message.type === 'error') resolve();
        });
        send({ type: 'dispose', id });
        // A worker stuck on a hung GPU call must not keep its memory: end it anyway.
        setTimeout(resolve, DISPOSE_TIMEOUT_MS);
      });
      worker.terminate();
      kill(new EngineDisposedError());
    },
  };
}
