/**
 * The worker half: one engine per worker, driven by ClientMessages. Generation streams back chunk by chunk
 * as the engine produces them; aborts arrive as messages and reach the engine through an AbortController
 * per request, so a stop behaves exactly as `signal.abort()` does in the same thread.
 */
import type { Engine } from '../engine/engine';
import { EngineDisposedError } from '../engine/errors';
import { serializeError } from './errors';
import { engineInfo, loadCachedEngine } from './load';
import type { ClientMessage, WorkerEndpoint, WorkerMessage } from './protocol';

type Message<T extends ClientMessage['type']> = Extract<ClientMessage, { type: T }>;

export function serveEngine(endpoint: WorkerEndpoint): void {
  let engine: Engine | undefined;
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

  function current(): Engine {
    if (!engine) throw new EngineDisposedError();
    return engine;
  }

  async function load({ id, url, options }: Message<'load'>): Promise<void> {
    await track(id, async (signal) => {
      if (engine || loading) throw new Error('This worker already has an engine; start a new worker for another model.');
      loading = true;
      try {
        const loaded = await loadCachedEngine(url, { ...options, signal, onProgress: (progress) => post({ type: 'progress', id, progress }) });
        engine = loaded;
        void loaded.gpu?.lost.then((error) => post({ type: 'device-lost', error: serializeError(error) }));
        post({ type: 'loaded', id, info: engineInfo(loaded, options.modelId ?? url) });
      } finally {
        loading = false;
      }
    });
  }

  async function chat({ id, request }: Message<'chat'>): Promise<void> {
    await track(id, async (signal) => {
      const completions = current().chat.completions;
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
      const stream = current().generate(prompt, { ...options, signal });
      post({ type: 'accepted', id });
      for await (const delta of stream) post({ type: 'delta', id, delta });
      post({ type: 'generation-result', id, result: await stream.result });
      post({ type: 'done', id });
    });
  }

  async function dispose({ id }: Message<'dispose'>): Promise<void> {
    for (const controller of controllers.values()) controller.abort();
    const disposing = engine;
    engine = undefined;
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
      case 'chat':
        return void chat(message);
      case 'generate':
        return void generate(message);
      case 'abort':
        return controllers.get(message.id)?.abort();
      case 'dispose':
        return void dispose(message);
      case 'simulate-device-loss':
        return engine?.gpu?.device.destroy();
    }
  });
  post({ type: 'ready' });
}
