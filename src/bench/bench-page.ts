/**
 * The browser half of `npm run bench`: the same measurements as in Node, in this page's WebGPU, on
 * stories260K fetched from the dev server. Results go to `window.__bench` for the runner to collect.
 */
import { openSafetensors } from '../formats/safetensors';
import { fetchSource } from '../net';
import { acquireGpu } from '../gpu/device';
import { parseModelConfig } from '../model/config';
import { loadCanonicalWeights, safetensorsWeightReader } from '../model/weights';
import { benchModel, measureCopyGBps, type BenchDtype, type ModelBenchCase, type ModelBenchPlan, type ModelBenchResult } from './model-bench';

export interface BrowserBenchState {
  done: boolean;
  adapter?: string;
  results: ModelBenchResult[];
  error?: string;
}

declare global {
  interface Window {
    __bench?: BrowserBenchState;
  }
}

function storiesCase(dtype: BenchDtype): ModelBenchCase {
  return {
    model: 'stories260K',
    dtype,
    async load() {
      const base = new URL('/models/stories260K/', location.href);
      const spec = parseModelConfig(await (await fetch(new URL('config.json', base))).json());
      const file = await openSafetensors(await fetchSource(new URL('model.safetensors', base).href));
      const canonical = dtype === 'q8' || dtype === 'q4' ? 'f16' : dtype;
      return { spec, weights: await loadCanonicalWeights(spec, safetensorsWeightReader(file), { dtype: canonical }) };
    },
  };
}

async function run(state: BrowserBenchState): Promise<void> {
  const params = new URLSearchParams(location.search);
  const plan: ModelBenchPlan = JSON.parse(params.get('plan') ?? 'null');
  const dtypes = (params.get('dtypes') ?? 'f32').split(',').filter((d): d is BenchDtype => ['f32', 'f16', 'q8', 'q4'].includes(d));
  const gpu = await acquireGpu();
  state.adapter = gpu.adapterName;
  const copyGBps = await measureCopyGBps(gpu);
  const log = document.getElementById('log');
  for (const dtype of dtypes) {
    state.results.push(await benchModel(gpu, storiesCase(dtype), plan, copyGBps, (line) => log?.append(`\n${line}`)));
  }
}

const state: BrowserBenchState = { done: false, results: [] };
window.__bench = state;
run(state).then(
  () => (state.done = true),
  (e: unknown) => {
    state.error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    state.done = true;
  },
);
