/**
 * What the UI needs from an engine, met both by an engine in a worker (createWorkerEngine) and by one in the
 * page's own thread (createInThreadEngine): the same `chat.completions.create` and `generate` as Engine.
 */
import type { ChatCompletions, GenerateOptions, GenerationStream } from '../engine/types';
import type { DeviceLostError } from '../gpu/errors';
import { engineInfo, loadCachedEngine, type LoadCachedEngineOptions } from './load';
import type { EngineInfo } from './protocol';

export interface ChatEngine {
  readonly info: EngineInfo;
  readonly chat: { completions: ChatCompletions };
  generate(prompt: string | readonly number[], options?: GenerateOptions): GenerationStream;
  /** Resolves (never rejects) when the GPU device is lost; the engine is unusable from then on. */
  readonly lost: Promise<DeviceLostError>;
  /**
   * Resolves once every kernel is compiled: the kernels for long prompt chunks may compile after the load, and
   * a request that needs them meanwhile waits for them (see Engine.whenCompiled).
   */
  whenCompiled(): Promise<void>;
  /** Destroys the GPU device as a driver reset would, to exercise the device-lost path. */
  simulateDeviceLoss(): void;
  /** Frees the GPU memory once running requests end (a worker aborts them first, then ends). */
  dispose(): Promise<void>;
}

/** The engine in this thread: for hosts whose policy forbids the worker. Weights still come from the cache. */
export async function createInThreadEngine(url: string, options: LoadCachedEngineOptions = {}): Promise<ChatEngine> {
  const engine = await loadCachedEngine(url, options);
  return {
    info: engineInfo(engine, options.modelId ?? url),
    chat: engine.chat,
    generate: (prompt, generateOptions) => engine.generate(prompt, generateOptions),
    // The WASM backend has no device to lose.
    lost: engine.gpu?.lost ?? new Promise<never>(() => {}),
    whenCompiled: () => engine.whenCompiled(),
    simulateDeviceLoss: () => engine.gpu?.device.destroy(),
    dispose: () => engine.dispose(),
  };
}
