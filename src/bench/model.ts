/**
 * `npm run bench`: whole-model benchmark on Node's Dawn adapter (VK_ICD_FILENAMES picks the Vulkan driver;
 * SwiftShader by default). Options: --models=stories260K,SmolLM2-135M,Qwen2.5-0.5B,Llama-3.2-1B
 * (and TinyLlama-1.1B) --dtypes=f32,f16,q8,q4 --full (all positions; the default on a software adapter is a short
 * plan) --prefill=128,512 --decode-at=0,2048 --decode-tokens=4 (override the plan, e.g. for a 1B model on a
 * software adapter) --decode-fill=prefill (prefill the tokens before each decode position; by default decode
 * takes the cache as filled, see ModelBenchPlan.decodeFill)
 * --readme (rewrite the README's performance section from this run) --no-browser (skip the headless
 * Chromium run of the same plan). Prints a Markdown table and writes
 * bench-output/model.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { openSafetensors } from '../formats/safetensors';
import { acquireNodeGpu } from '../gpu/node';
import { parseModelConfig } from '../model/config';
import { folderFiles } from '../model/files-node';
import { BENCHMARK_MODELS, type BenchmarkModelName } from '../dev/random-model';
import { loadCanonicalWeights, safetensorsWeightReader } from '../model/weights';
import { startBrowser } from '../dev/browser';
import type { BrowserBenchState } from './bench-page';
import { benchModel, formatTable, measureCopyGBps, randomBenchCase, type BenchDtype, type ModelBenchCase, type ModelBenchPlan } from './model-bench';

const README_START = '<!-- bench:model:start -->';
const README_END = '<!-- bench:model:end -->';

const FULL: ModelBenchPlan = { prefillLengths: [128, 512], decodePositions: [0, 512, 2048], decodeTokens: 32 };
const SHORT: ModelBenchPlan = { prefillLengths: [128], decodePositions: [0, 256], decodeTokens: 8 };

function storiesCase(dtype: BenchDtype): ModelBenchCase {
  return {
    model: 'stories260K',
    dtype,
    async load() {
      const files = folderFiles(resolve(process.env.WEBGPU_LLM_MODELS ?? '../shared/models', 'stories260K'));
      const config = await files.text('config.json');
      const source = await files.bytes('model.safetensors');
      if (!config || !source) throw new Error('stories260K not found: set WEBGPU_LLM_MODELS to the folder holding stories260K/');
      const spec = parseModelConfig(JSON.parse(config));
      const canonical = dtype === 'q8' || dtype === 'q4' ? 'f16' : dtype;
      return { spec, weights: await loadCanonicalWeights(spec, safetensorsWeightReader(await openSafetensors(source)), { dtype: canonical }) };
    },
  };
}

/** The same plan in headless Chromium's WebGPU, on stories260K from the dev server. */
async function benchInChromium(plan: ModelBenchPlan, dtypes: BenchDtype[]): Promise<BrowserBenchState> {
  const harness = await startBrowser();
  try {
    const { page, consoleErrors } = await harness.newPage();
    const query = new URLSearchParams({ plan: JSON.stringify(plan), dtypes: dtypes.join(',') });
    await page.goto(harness.url(`/src/bench/bench.html?${query}`));
    await page.waitForFunction(() => window.__bench?.done === true, undefined, { timeout: 600_000 });
    const state: BrowserBenchState = await page.evaluate(() => window.__bench ?? { done: true, results: [], error: 'no state' });
    if (state.error && consoleErrors.length) state.error += ` (console: ${consoleErrors.join(' | ')})`;
    return state;
  } finally {
    await harness.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      models: { type: 'string' },
      dtypes: { type: 'string', default: 'f32,f16,q8,q4' },
      full: { type: 'boolean', default: false },
      readme: { type: 'boolean', default: false },
      'no-browser': { type: 'boolean', default: false },
      prefill: { type: 'string' },
      'decode-at': { type: 'string' },
      'decode-tokens': { type: 'string' },
      'decode-fill': { type: 'string', default: 'assume' },
    },
  });
  const gpu = await acquireNodeGpu();
  const software = gpu.isSoftwareAdapter;
  const numbers = (list: string) => list.split(',').map((v) => Number.parseInt(v, 10));
  const base = values.full || !software ? FULL : SHORT;
  const plan: ModelBenchPlan = {
    prefillLengths: values.prefill ? numbers(values.prefill) : base.prefillLengths,
    decodePositions: values['decode-at'] ? numbers(values['decode-at']) : base.decodePositions,
    decodeTokens: values['decode-tokens'] ? Number.parseInt(values['decode-tokens'], 10) : base.decodeTokens,
    decodeFill: values['decode-fill'] === 'prefill' ? 'prefill' : 'assume',
  };
  if (values['decode-fill'] !== 'prefill' && values['decode-fill'] !== 'assume') throw new Error('--decode-fill is assume or prefill');
  const counts = [...plan.prefillLengths, ...plan.decodePositions, plan.decodeTokens];
  if (!counts.every((n) => Number.isInteger(n) && n >= 0) || plan.decodeTokens < 2) {
    throw new Error('--prefill and --decode-at take non-negative integers, --decode-tokens an integer ≥ 2');
  }
  // A software adapter prefills SmolLM2-135M at ~0.5 tok/s: bigger models only when asked for.
  const models = (values.models ?? (software ? 'stories260K' : 'stories260K,SmolLM2-135M,Qwen2.5-0.5B,Llama-3.2-1B')).split(',');
  const dtypes = values.dtypes.split(',').filter((d): d is BenchDtype => d === 'f32' || d === 'f16' || d === 'q8' || d === 'q4');
  for (const m of models) {
    if (m !== 'stories260K' && !(m in BENCHMARK_MODELS)) throw new Error(`unknown model ${m}; choose stories260K or ${Object.keys(BENCHMARK_MODELS).join(', ')}`);
  }

  console.log(`adapter: ${gpu.adapterName}${software ? ' (software: short plan; --full for all positions)' : ''}`);
  const copyGBps = await measureCopyGBps(gpu);
  console.log(`device copy bandwidth: ${copyGBps.toFixed(1)} GB/s`);
  const results = [];
  for (const m of models) {
    for (const dtype of dtypes) {
      const c = m === 'stories260K' ? storiesCase(dtype) : randomBenchCase(m as BenchmarkModelName, dtype);
      results.push(await benchModel(gpu, c, plan, copyGBps, (line) => console.log(line)));
    }
  }
  const table = formatTable(results, plan);
  console.log(`\n${table}`);
  const notes = results.flatMap((r) => r.notes.map((note) => `${r.model} ${r.dtype}: ${note}`));
  for (const note of notes) console.log(`note: ${note}`);

  const browser = values['no-browser'] ? undefined : await benchInChromium(plan, dtypes);
  const browserTable = browser?.results.length ? formatTable(browser.results, plan) : undefined;
  if (browser) {
    console.log(`\nheadless Chromium, adapter ${browser.adapter ?? '?'}:`);
    console.log(browserTable ?? `failed: ${browser.error}`);
  }

  const date = new Date().toISOString();
  mkdirSync('bench-output', { recursive: true });
  writeFileSync('bench-output/model.json', JSON.stringify({ adapter: gpu.adapterName, date, plan, results, browser }, null, 2));
  console.log('wrote bench-output/model.json');
  if (values.readme) {
    const section = [
      `Measured by \`npm run bench\` on **${gpu.adapterName}** (Node, Dawn), ${date.slice(0, 10)}; ${software ? 'a software adapter: these figures measure CPU emulation, not a GPU' : 'a hardware adapter'}.`,
      '',
      table,
      ...(notes.length ? ['', ...notes.map((n) => `- ${n}`)] : []),
      ...(browserTable ? ['', `The same in headless Chromium (stories260K only), adapter **${browser?.adapter}**:`, '', browserTable] : []),
    ].join('\n');
    const readme = readFileSync('README.md', 'utf8');
    const start = readme.indexOf(README_START);
    const end = readme.indexOf(README_END);
    if (start < 0 || end < start) throw new Error(`README.md lacks the ${README_START} … ${README_END} markers`);
    writeFileSync('README.md', `${readme.slice(0, start + README_START.length)}\n${section}\n${readme.slice(end)}`);
    console.log('updated the performance section of README.md');
  }
  return 0;
}
