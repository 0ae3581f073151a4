/**
 * Browser half of the golden test: loads a model from the dev server's /models/ with Range requests,
 * generates greedily from the golden prompt and exposes the ids as `window.__golden`.
 */
import { acquireGpu } from '../../src/gpu/device';
import { urlFiles } from '../../src/model/files';
import { loadModel } from '../../src/model/load';

export interface GoldenState {
  done: boolean;
  ids?: number[];
  text?: string;
  error?: string;
}

declare global {
  interface Window {
    __golden?: GoldenState;
  }
}

async function run(): Promise<GoldenState> {
  const params = new URLSearchParams(location.search);
  const dtype = params.get('dtype') === 'f16' ? 'f16' : 'f32';
  const promptIds = (params.get('prompt') ?? '1').split(',').map(Number);
  const newTokens = Number(params.get('n') ?? '200');
  const gpu = await acquireGpu();
  const { model, tokenizer } = await loadModel(gpu, urlFiles(new URL(`/models/${params.get('model')}/`, location.href).href), { dtype });
  const ids: number[] = [];
  let next = await model.forward(promptIds);
  while (next.kind === 'token' && ids.length < newTokens) {
    ids.push(next.token);
    if (ids.length < newTokens) next = await model.forward([next.token]);
  }
  model.destroy();
  return { done: true, ids, text: tokenizer.decode(ids) };
}

window.__golden = { done: false };
run().then(
  (state) => {
    window.__golden = state;
    document.getElementById('out')!.textContent = state.text ?? '';
  },
  (e: unknown) => (window.__golden = { done: true, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) }),
);
