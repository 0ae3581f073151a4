/**
 * `npm run bench`: whole-model benchmark on Node's Dawn adapter (VK_ICD_FILENAMES picks the Vulkan driver;
 * SwiftShader by default). Options: --models=stories260K,SmolLM2-135M,Qwen2.5-0.5B,Llama-3.2-1B
 * --dtypes=f32,f16 --full (all positions; the default on a software adapter is a short plan).
 * Prints a Markdown table and writes bench-output/model.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { openSafetensors } from '../formats/safetensors';
import { acquireNodeGpu } from '../gpu/node';
import { parseModelConfig } from '../model/config';
import { folderFiles } from '../model/files-node';
import { BENCHMARK_MODELS, type BenchmarkModelName } from '../model/random-model';
import { loadCanonicalWeights, safetensorsWeightReader, type WeightDtype } from '../model/weights';
import { benchModel, formatTable, measureCopyGBps, randomBenchCase, type ModelBenchCase, type ModelBenchPlan } from './model-bench';

const FULL: ModelBenchPlan = { prefillLengths: [128, 512], decodePositions: [0, 512, 2048], decodeTokens: 32 };
const SHORT: ModelBenchPlan = { prefillLengths: [128], decodePositions: [0, 256], decodeTokens: 8 };

function storiesCase(dtype: WeightDtype): ModelBenchCase {
  return {
    model: 'stories260K',
    dtype,
    async load() {
      const files = folderFiles(resolve(process.env.WEBGPU_LLM_MODELS ?? '../shared/models', 'stories260K'));
      const config = await files.text('config.json');
      const source = await files.bytes('model.safetensors');
      if (!config || !source) throw new Error('stories260K not found: set WEBGPU_LLM_MODELS to the folder holding stories260K/');
      const spec = parseModelConfig(JSON.parse(config));
      return { spec, weights: await loadCanonicalWeights(spec, safetensorsWeightReader(await openSafetensors(source)), { dtype }) };
    },
  };
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { models: { type: 'string' }, dtypes: { type: 'string', default: 'f32,f16' }, full: { type: 'boolean', default: false } },
  });
  const gpu = await acquireNodeGpu();
  const software = gpu.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe/i.test(gpu.adapterName);
  const plan = values.full || !software ? FULL : SHORT;
  // A software adapter prefills SmolLM2-135M at ~0.5 tok/s: bigger models only when asked for.
  const models = (values.models ?? (software ? 'stories260K' : 'stories260K,SmolLM2-135M,Qwen2.5-0.5B,Llama-3.2-1B')).split(',');
  const dtypes = values.dtypes.split(',').filter((d): d is WeightDtype => d === 'f32' || d === 'f16');
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
  console.log(`\n${formatTable(results, plan)}`);
  for (const r of results) for (const note of r.notes) console.log(`note: ${r.model} ${r.dtype}: ${note}`);
  mkdirSync('bench-output', { recursive: true });
  writeFileSync('bench-output/model.json', JSON.stringify({ adapter: gpu.adapterName, date: new Date().toISOString(), plan, results }, null, 2));
  console.log('wrote bench-output/model.json');
  return 0;
}
