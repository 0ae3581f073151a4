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
import { unlessAborted } from '../util/abort';
import type { Embeddings, FillMaskOptions, FillMaskResult } from '../embeddings/types';
import {
  WorkerStartError,
  type ClientMessage,
  type EmbeddingEngineInfo,
  type LoadEmbeddingEngineOptions,
  type LoadEngineOptions,
  type LoadProgress,
  type WorkerMessage,
} from './protocol';

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

/** The page's end of a worker running serveEngine(): request ids, their handlers, aborts, and the worker's end. */
interface Connection {
  readonly lost: Promise<DeviceLostError>;
  nextId(): number;
  send(message: ClientMessage): void;
  /** Registers the handler of request `id`, or answers it at once with the error that killed the worker. */
  listen(id: number, handler: (message: WorkerMessage) => void): void;
  /** Whether request `id` still waits for answers. */
  pending(id: number): boolean;
  forget(id: number): void;
  /** Sends `abort` for request `id` when `signal` fires; returns the cleanup. Call after sending the request. */
  forwardAbort(id: number, signal: AbortSignal | undefined): () => void;
  /** Frees the engine in the worker (or gives it DISPOSE_TIMEOUT_MS), then ends the worker. */
  dispose(): Promise<void>;
}

/** Connects to `worker` and loads an engine there: `load` sends the load message, `loaded` picks the answer's info. */
async function openWorker<Info>(
  options: Pick<WorkerEngineOptions, 'worker' | 'onProgress' | 'signal'>,
  load: (id: number) => ClientMessage,
  loaded: (message: WorkerMessage) => Info | undefined,
): Promise<{ connection: Connection; info: Info }> {
  const { worker, onProgress, signal } = options;
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

  function listen(id: number, handler: (message: WorkerMessage) => void): void {
    if (dead) handler({ type: 'error', id, error: serializeError(dead) });
    else handlers.set(id, handler);
  }

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

  const connection: Connection = {
    lost,
    nextId: () => nextId++,
    send,
    listen,
    pending: (id) => handlers.has(id),
    forget: (id) => void handlers.delete(id),
    forwardAbort,
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

  try {
    // The load below forwards its own abort: this wait's listener goes once the worker is up.
    await unlessAborted(ready, signal);
    const info = await new Promise<Info>((resolve, reject) => {
      const id = nextId++;
      let stopForwarding = () => {};
      listen(id, (message) => {
        if (message.type === 'progress') return onProgress?.(message.progress);
        const answer = loaded(message);
        if (answer === undefined && message.type !== 'error') return;
        handlers.delete(id);
        stopForwarding();
        if (message.type === 'error') return reject(reviveError(message.error));
        if (answer !== undefined) resolve(answer);
      });
      send(load(id));
      stopForwarding = forwardAbort(id, signal);
    });
    return { connection, info };
  } catch (e) {
    worker.terminate();
    throw e;
  }
}

/** A request with one answer: `pick` takes the result from the answering message. */
function call<T>(connection: Connection, request: (id: number) => ClientMessage, pick: (message: WorkerMessage) => T | undefined, signal?: AbortSignal): Promise<T> {
  const id = connection.nextId();
  return new Promise<T>((resolve, reject) => {
    let stopForwarding = () => {};
    connection.listen(id, (message) => {
      const answer = pick(message);
      if (answer === undefined && message.type !== 'error') return;
      connection.forget(id);
      stopForwarding();
      if (message.type === 'error') reject(reviveError(message.error));
      else if (answer !== undefined) resolve(answer);
    });
    if (connection.pending(id)) {
      connection.send(request(id));
      stopForwarding = connection.forwardAbort(id, signal);
    }
  });
}

export async function createWorkerEngine(url: string, options: WorkerEngineOptions): Promise<ChatEngine> {
  const { worker, onProgress, signal, ...loadOptions } = options;
  const { connection, info } = await openWorker(
    { worker, onProgress, signal },
    (id) => ({ type: 'load', id, url, options: loadOptions }),
    (message) => (message.type === 'loaded' ? message.info : undefined),
  );
  const { send, listen, forwardAbort } = connection;

  function create(request: ChatCompletionRequest & { stream: true }, options?: RequestOptions): Promise<AsyncIterable<ChatCompletionChunk>>;
  function create(request: ChatCompletionRequest & { stream?: false | null }, options?: RequestOptions): Promise<ChatCompletion>;
  function create(request: ChatCompletionRequest, options?: RequestOptions): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;
  function create(request: ChatCompletionRequest, requestOptions: RequestOptions = {}): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
    const { signal: requestSignal, ...wire } = request;
    const abortSignal = requestOptions.signal ?? requestSignal;
    const id = connection.nextId();
    const chunks = new Channel<ChatCompletionChunk>();
    return new Promise((resolve, reject) => {
      let accepted = false;
      let stopForwarding = () => {};
      const finish = () => {
        connection.forget(id);
        stopForwarding();
      };
      listen(id, (message) => {
        switch (message.type) {
          case 'accepted':
            accepted = true;
            return resolve(
              chunks.drain(() => {
                if (connection.pending(id)) send({ type: 'abort', id });
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
      if (connection.pending(id)) {
        send({ type: 'chat', id, request: wire });
        stopForwarding = forwardAbort(id, abortSignal);
      }
    });
  }

  function generate(prompt: string | readonly number[], generateOptions: GenerateOptions = {}): GenerationStream {
    const { signal: abortSignal, ...wire } = generateOptions;
    const id = connection.nextId();
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
          connection.forget(id);
          stopForwarding();
          return deltas.end();
        case 'error': {
          connection.forget(id);
          stopForwarding();
          const error = reviveError(message.error);
          fail(error);
          return deltas.fail(error);
        }
      }
    });
    if (connection.pending(id)) {
      send({ type: 'generate', id, prompt: typeof prompt === 'string' ? prompt : [...prompt], options: wire });
      stopForwarding = forwardAbort(id, abortSignal);
    }
    const iterator = deltas.drain(() => {
      if (connection.pending(id)) send({ type: 'abort', id });
      fail(consumerStopped());
    });
    return { result, [Symbol.asyncIterator]: () => iterator };
  }

  return {
    info,
    chat: { completions: { create } },
    generate,
    lost: connection.lost,
    whenCompiled: () =>
      call(
        connection,
        (id) => ({ type: 'when-compiled', id }),
        (message) => (message.type === 'done' ? true : undefined),
      ).then(() => {}),
    simulateDeviceLoss: () => send({ type: 'simulate-device-loss' }),
    dispose: () => connection.dispose(),
  };
}

export interface WorkerEmbeddingEngineOptions extends LoadEmbeddingEngineOptions {
  /** A worker running serveEngine(); the engine owns it from now on and terminates it on dispose or failure. */
  worker: Worker;
  onProgress?: (progress: LoadProgress) => void;
  /** Cancels the load. */
  signal?: AbortSignal;
}

/** An EmbeddingEngine in a worker: the same `embeddings.create` and `fillMask`, answered by messages. */
export interface WorkerEmbeddingEngine {
  readonly info: EmbeddingEngineInfo;
  readonly embeddings: Embeddings;
  fillMask(text: string, options?: FillMaskOptions): Promise<FillMaskResult[]>;
  /** Resolves (never rejects) when the GPU device is lost; the engine is unusable from then on. */
  readonly lost: Promise<DeviceLostError>;
  /** Frees the GPU memory once running requests end, then ends the worker. */
  dispose(): Promise<void>;
}

/** Loads the model at `url` for embeddings (createEmbeddingEngine) in `options.worker`. */
export async function createWorkerEmbeddingEngine(url: string, options: WorkerEmbeddingEngineOptions): Promise<WorkerEmbeddingEngine> {
  const { worker, onProgress, signal, ...loadOptions } = options;
  const { connection, info } = await openWorker(
    { worker, onProgress, signal },
    (id) => ({ type: 'load-embeddings', id, url, options: loadOptions }),
    (message) => (message.type === 'embeddings-loaded' ? message.info : undefined),
  );
  return {
    info,
    embeddings: {
      create: (request, requestOptions = {}) =>
        call(
          connection,
          (id) => ({ type: 'embeddings', id, request }),
          (message) => (message.type === 'embeddings-response' ? message.response : undefined),
          requestOptions.signal,
        ),
    },
    fillMask: (text, fillOptions = {}) => {
      const { signal: fillSignal, ...wire } = fillOptions;
      return call(
        connection,
        (id) => ({ type: 'fill-mask', id, text, options: wire }),
        (message) => (message.type === 'fill-mask-results' ? message.results : undefined),
        fillSignal,
      );
    },
    lost: connection.lost,
    dispose: () => connection.dispose(),
  };
}
