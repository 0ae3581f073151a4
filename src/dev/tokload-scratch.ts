import { readFileSync } from 'node:fs';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { loadTokenizer } from '../tokenizer/tokenizer';
export async function main() {
for (const name of ['qwen3', 'llama3_1', 'gemma3']) {
  const dir = `/work/shared/tokenizers/${name}`;
  const json = readFileSync(`${dir}/tokenizer.json`, 'utf8');
  const cfg = readFileSync(`${dir}/tokenizer_config.json`, 'utf8');
  const t0 = performance.now();
  const parsed = JSON.parse(json);
  const t1 = performance.now();
  new HfTokenizer(parsed, JSON.parse(cfg));
  const t2 = performance.now();
  const tok = loadTokenizer({ tokenizerJson: json, tokenizerConfig: cfg });
  const t3 = performance.now();
  console.log(name, tok.vocabSize, 'parse', (t1 - t0).toFixed(0), 'hf', (t2 - t1).toFixed(0), 'ours total', (t3 - t2).toFixed(0));
  const t4 = performance.now();
  const ids = tok.encode('Hello world, héllo 你好 🤗'.repeat(100));
  console.log('encode', (performance.now() - t4).toFixed(1), ids.length);
}
return 0; }
