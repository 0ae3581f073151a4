/**
 * Where measured kernel choices (tuning results) are kept between loads: a store a page, a Web Worker and an
 * embed can all reach. IndexedDB through idb-keyval where it exists (localStorage does not exist in a
 * worker, which is where the engine runs); otherwise (Node) one store per process. Values are small JSON;
 * the caller validates what it reads back, since the database outlives the code that wrote it.
 */
import { createStore, get, set, type UseStore } from 'idb-keyval';

export interface TuningStore {
  /** The stored value, or undefined when absent or the store cannot be read. */
  get(key: string): Promise<unknown>;
  /** Stores `value`; failures (quota, private mode) are swallowed: tuning again is the only cost. */
  set(key: string, value: unknown): Promise<void>;
}

/** A store in memory, e.g. for one Node process or a test that simulates a reload with a fresh device. */
export function memoryTuningStore(): TuningStore {
  const values = new Map<string, unknown>();
  return {
    get: async (key) => values.get(key),
    set: async (key, value) => void values.set(key, value),
  };
}

/** IndexedDB database `webgpu-llm-tuning`, object store `results` (opened on first use). */
export function indexedDbTuningStore(): TuningStore {
  let store: UseStore | undefined;
  const open = () => (store ??= createStore('webgpu-llm-tuning', 'results'));
  return {
    async get(key) {
      try {
        return await get(key, open());
      } catch {
        return undefined;
      }
    },
    async set(key, value) {
      try {
        await set(key, value, open());
      } catch {
        // Denied or full: the next load tunes again.
      }
    },
  };
}

let defaultStore: TuningStore | undefined;

/** IndexedDB where the global scope has it (window, worker), else one in-memory store for the process. */
export function defaultTuningStore(): TuningStore {
  defaultStore ??= typeof indexedDB === 'undefined' ? memoryTuningStore() : indexedDbTuningStore();
  return defaultStore;
}
