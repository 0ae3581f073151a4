/** Browser half of the tuning-store test: `window.__tuning.run` tunes in the page or in a dedicated worker. */
import { tuneOnce, type TuneResult } from './tuning-tune';

declare global {
  interface Window {
    __tuning?: { run(where: 'page' | 'worker'): Promise<TuneResult> };
  }
}

function inWorker(): Promise<TuneResult> {
  const worker = new Worker(new URL('./tuning-worker.ts', import.meta.url), { type: 'module' });
  return new Promise<TuneResult>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<{ result?: TuneResult; error?: string }>) => {
      worker.terminate();
      if (e.data.result) resolve(e.data.result);
      else reject(new Error(e.data.error ?? 'the worker gave no result'));
    };
    worker.onerror = (e) => {
      worker.terminate();
      reject(new Error(e.message));
    };
    worker.postMessage('tune');
  });
}

window.__tuning = { run: (where) => (where === 'page' ? tuneOnce() : inWorker()) };
