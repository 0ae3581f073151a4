/**
 * `webgpu-llm generate --model <folder|URL> --prompt "…" [--max-tokens N] [--context N] [--dtype f32|f16|q8|q4]`:
 * loads a Hugging Face-layout model, streams greedy text to stdout, and prints prefill and decode speed
 * to stderr so the text stays pipeable.
 */
import { parseArgs } from 'node:util';
import { acquireNodeGpu } from '../gpu/node';
import { folderFiles } from '../model/files-node';
import { urlFiles } from '../model/files';
import { loadModel } from '../model/load';
import { createStreamDecoder } from '../tokenizer/stream';

const USAGE = `usage: webgpu-llm generate --model <folder|URL> [--prompt TEXT] [--max-tokens N] [--context N] [--dtype f32|f16|q8|q4]`;

function isDtype(d: string | undefined): d is 'f32' | 'f16' | 'q8' | 'q4' | undefined {
  return d === undefined || d === 'f32' || d === 'f16' || d === 'q8' || d === 'q4';
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== 'generate') {
    console.error(USAGE);
    return 2;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      model: { type: 'string' },
      prompt: { type: 'string', default: '' },
      'max-tokens': { type: 'string', default: '128' },
      context: { type: 'string' },
      dtype: { type: 'string' },
    },
    strict: true,
  });
  const maxTokens = Number(values['max-tokens']);
  const contextLength = values.context === undefined ? undefined : Number(values.context);
  const dtype = values.dtype;
  if (!values.model || !Number.isInteger(maxTokens) || maxTokens < 1 || !isDtype(dtype)) {
    console.error(USAGE);
    return 2;
  }

  const gpu = await acquireNodeGpu();
  const files = /^https?:\/\//.test(values.model) ? urlFiles(values.model) : folderFiles(values.model);
  const { model, tokenizer, spec } = await loadModel(gpu, files, { dtype, contextLength });
  const prompt = tokenizer.encode(values.prompt);
  const budget = Math.min(maxTokens, model.contextLength - prompt.length);
  const stream = createStreamDecoder(tokenizer, { skipSpecialTokens: true });

  process.stdout.write(values.prompt);
  const t0 = performance.now();
  let next = await model.forward(prompt);
  const tPrefill = performance.now();
  let generated = 0;
  while (next.kind === 'token' && generated < budget) {
    generated++;
    process.stdout.write(stream.push(next.token));
    if (spec.eosTokenIds.includes(next.token) || generated === budget) break;
    next = await model.forward([next.token]);
  }
  process.stdout.write(stream.flush() + '\n');
  const tEnd = performance.now();

  const decodeTokens = Math.max(generated - 1, 0);
  console.error(
    `[${gpu.adapterName}] prefill ${prompt.length} tokens: ${((prompt.length * 1000) / (tPrefill - t0)).toFixed(1)} tok/s; ` +
      `decode ${decodeTokens} tokens: ${decodeTokens ? ((decodeTokens * 1000) / (tEnd - tPrefill)).toFixed(1) : '–'} tok/s`,
  );
  model.destroy();
  return 0;
}
