/**
 * The worker half: one engine per worker (for chat, or for embeddings and fill-mask), driven by ClientMessages.
 * Generation streams back chunk by chunk as the engine produces them; aborts arrive as messages and reach the
 * engine through an AbortController per request, so a stop behaves exactly as `signal.abort()` does in the same thread.
 */
import type { EmbeddingEngine } from '../embeddings/engine';
import { UnsupportedTaskError } from '../embeddings/errors';
import type { Engine } from '../engine/engine';
import { EngineDisposedError } from '../engine/errors';
import { serializeError } from './errors';
import { embeddingEngineInfo, engineInfo, loadCachedEmbeddingEngine, loadCachedEngine } from './load';
import type { ClientMessage, LoadProgress, WorkerEndpoint, WorkerMessage } from './protocol';

type Message<T extends ClientMessage['type']> = Extract<ClientMessage, { type: T }>;

/** How the worker loads each kind of engine: through the model cache by default (tests load from memory). */
export interface EngineLoaders {
  chat: typeof loadCachedEngine;
  embeddings: typeof loadCachedEmbeddingEngine;
}

const CACHED: EngineLoaders = { chat: loadCachedEngine, embeddings: loadCachedEmbeddingEngine };

type Served = { task: 'chat'; engine: Engine } | { task: 'embeddings'; engine: EmbeddingEngine };

export function serveEngine(endpoint: WorkerEndpoint, loaders: EngineLoaders = CACHED): void {
  let served: Served | undefined;
  let loading = false;
  const controllers = new Map<number, AbortController>();
  const post = (message: WorkerMessage) => endpoint.postMessage(message);
  const fail = (id: number, error: unknown) => post({ type: 'error', id, error: serializeError(error) });

  /** Runs a request with its own AbortController, reporting any failure as an `error` message. */
  async function track(id: number, run: (signal: AbortSignal) => Promise<void>): Promise<void> {
    const controller = new AbortController();
    controllers.set(id, controller);
    try {
      await run(controller.signal);
    } catch (e) {
      fail(id, e);
    } finally {
      controllers.delete(id);
    }
  }

  function chatEngine(): Engine {
    if (!served) throw new EngineDisposedError();
    if (served.task !== 'chat') throw new UnsupportedTaskError('generation', 'it was loaded for embeddings (createWorkerEmbeddingEngine)');
    return served.engine;
  }

  function embeddingEngine(): EmbeddingEngine {
    if (!served) throw new EngineDisposedError();
    if (served.task !== 'embeddings') throw new UnsupportedTaskError('embeddings', 'it was loaded for chat; load it with createWorkerEmbeddingEngine');
    return served.engine;
  }

  /** The one engine of this worker, loaded by `load` with progress posted under request `id`. */
  async function loadOnce<S extends Served>(id: number, load: (onProgress: (progress: LoadProgress) => void) => Promise<S>): Promise<S> {
    if (served || loading) throw new Error('This worker already has an engine; start a new worker for another model.');
    loading = true;
    try {
      const loaded = await load((progress) => post({ type: 'progress', id, progress }));
      served = loaded;
      void loaded.engine.gpu?.lost.then((error) => post({ type: 'device-lost', error: serializeError(error) }));
      return loaded;
    } finally {
      loading = false;
    }
  }

  async function load({ id, url, options }: Message<'load'>): Promise<void> {
    await track(id, async (signal) => {
      const { engine } = await loadOnce(id, async (onProgress) => ({ task: 'chat' as const, engine: await loaders.chat(url, { ...options, signal, onProgress }) }));
      post({ type: 'loaded', id, info: engineInfo(engine, options.modelId ?? url) });
    });
  }

  async function loadEmbeddings({ id, url, options }: Message<'load-embeddings'>): Promise<void> {
    await track(id, async (signal) => {
      const { engine } = await loadOnce(id, async (onProgress) => ({ task: 'embeddings' as const, engine: await loaders.embeddings(url, { ...options, signal, onProgress }) }));
      post({ type: 'embeddings-loaded', id, info: embeddingEngineInfo(engine, options.modelId ?? url) });
    });
  }

  async function chat({ id, request }: Message<'chat'>): Promise<void> {
    await track(id, async (signal) => {
      const completions = chatEngine().chat.completions;
      if (request.stream) {
        const chunks = await completions.create({ ...request, stream: true }, { signal });
        post({ type: 'accepted', id });
        for await (const chunk of chunks) post({ type: 'chunk', id, chunk });
      } else {
        post({ type: 'completion', id, completion: await completions.create({ ...request, stream: false }, { signal }) });
      }
      post({ type: 'done', id });
    });
  }

  async function generate({ id, prompt, options }: Message<'generate'>): Promise<void> {
    await track(id, async (signal) => {
      const stream = chatEngine().generate(prompt, { ...options, signal });
      post({ type: 'accepted', id });
      for await (const delta of stream) post({ type: 'delta', id, delta });
      post({ type: 'generation-result', id, result: await stream.result });
      post({ type: 'done', id });
    });
  }

  async function embeddings({ id, request }: Message<'embeddings'>): Promise<void> {
    await track(id, async (signal) => {
      post({ type: 'embeddings-response', id, response: await embeddingEngine().embeddings.create(request, { signal }) });
    });
  }

  async function fillMask({ id, text, options }: Message<'fill-mask'>): Promise<void> {
    await track(id, async (signal) => {
      post({ type: 'fill-mask-results', id, results: await embeddingEngine().fillMask(text, { ...options, signal }) });
    });
  }

  async function whenCompiled({ id }: Message<'when-compiled'>): Promise<void> {
    await track(id, async () => {
      await chatEngine().whenCompiled();
      post({ type: 'done', id });
    });
  }

  async function dispose({ id }: Message<'dispose'>): Promise<void> {
    for (const controller of controllers.values()) controller.abort();
    const disposing = served?.engine;
    served = undefined;
    try {
      await disposing?.dispose();
      disposing?.gpu?.device.destroy();
      post({ type: 'done', id });
    } catch (e) {
      fail(id, e);
    }
  }

  endpoint.addEventListener('message', (event) => {
    const message = event.data;
    switch (message.type) {
      case 'load':
        return void load(message);
      case 'load-embeddings':
        return void loadEmbeddings(message);
      case 'chat':
        return void chat(message);
      case 'generate':
        return void generate(message);
      case 'embeddings':
        return void embeddings(message);
      case 'fill-mask':
        return void fillMask(message);
      case 'abort':
        return controllers.get(message.id)?.abort();
      case 'dispose':
        return void dispose(message);
      case 'when-compiled':
        return void whenCompiled(message);
      case 'simulate-device-loss':
        return served?.engine.gpu?.device.destroy();
    }
  });
  post({ type: 'ready' });
}
