/**
 * `npm run bench:embed`: BERT encoder throughput on all-MiniLM-L6-v2's shape (random weights: speed does not
 * depend on their values), in sentences per second at batch 1, 8 and 32 of 128 tokens each: one `encode` call
 * per batch, timed through the hidden states' readback. Beside it GFLOP/s (projections and attention) and the
 * device's copy bandwidth measured in the same run, since software adapters are only comparable to themselves.
 * Options: --dtypes=f32,f16 --batches=1,8,32 --length=128 --runs=N. A software adapter runs batches 1 and 8 once
 * each by default (lavapipe took 14 s for one sentence of 128 tokens, ~0.3 GFLOP/s, as the decoder's prefill does).
 * Prints a table, writes bench-output/embed.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { MINILM_L6, randomBert, randomBertFiles } from '../dev/random-encoder';
import { acquireNodeGpu } from '../gpu/node';
import type { EncoderConfig } from '../model/encoder/encoder-model';
import { loadEncoderModel } from '../model/encoder/load';
import { createRng } from '../util/random';
import { measureCopyGBps } from './model-bench';

/** Multiply-adds ×2 of one input of `length` tokens: the layers' projections, and q·k and p·v over every pair. */
export function encoderFlops(c: EncoderConfig, length: number): number {
  const D = c.hiddenSize;
  const projections = 2 * length * (4 * D * D + 2 * D * c.intermediateSize);
  const attention = 4 * length * length * D;
  return c.layers * (projections + attention);
}

interface EmbedBenchRow {
  dtype: string;
  batch: number;
  length: number;
  sentencesPerSecond: number;
  msPerCall: number;
  gflops: number;
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      dtypes: { type: 'string', default: 'f32,f16' },
      batches: { type: 'string' },
      length: { type: 'string', default: '128' },
      runs: { type: 'string' },
    },
  });
  const gpu = await acquireNodeGpu();
  const software = gpu.isSoftwareAdapter;
  const batches = (values.batches ?? (software ? '1,8' : '1,8,32')).split(',').map(Number);
  const length = Number(values.length);
  const runs = values.runs ? Number(values.runs) : software ? 1 : 10;
  if (![...batches, length, runs].every((n) => Number.isInteger(n) && n >= 1)) throw new Error('--batches, --length and --runs take positive integers');
  if (length > MINILM_L6.maxPositions) throw new Error(`--length is at most ${MINILM_L6.maxPositions} (MiniLM's max_position_embeddings)`);

  console.log(`adapter: ${gpu.adapterName}${software ? ' (software: figures measure CPU emulation)' : ''}`);
  const copyGBps = await measureCopyGBps(gpu);
  console.log(`device copy bandwidth: ${copyGBps.toFixed(1)} GB/s`);
  const rng = createRng(1);
  const rows: EmbedBenchRow[] = [];
  for (const dtype of values.dtypes.split(',')) {
    if (dtype !== 'f32' && dtype !== 'f16') throw new Error(`--dtypes: f32 or f16, got ${dtype}`);
    const model = await loadEncoderModel(gpu, randomBertFiles(randomBert(MINILM_L6, 1)), { dtype, maxBatchTokens: Math.max(...batches) * length });
    console.log(`MiniLM-L6 ${dtype}: ${(model.gpuBytes / 2 ** 20).toFixed(1)} MiB on the GPU (weights + activations for ${model.maxBatchTokens} tokens)`);
    try {
      for (const batch of batches) {
        const inputs = Array.from({ length: batch }, () => ({ ids: Array.from({ length }, () => rng.int(MINILM_L6.vocabSize)) }));
        await model.encode(inputs); // compiles and warms up
        const t0 = performance.now();
        for (let r = 0; r < runs; r++) await model.encode(inputs);
        const seconds = (performance.now() - t0) / 1000 / runs;
        const row = { dtype, batch, length, sentencesPerSecond: batch / seconds, msPerCall: seconds * 1000, gflops: (batch * encoderFlops(model.config, length)) / seconds / 1e9 };
        rows.push(row);
        console.log(`  batch ${batch}: ${row.sentencesPerSecond.toFixed(1)} sentences/s, ${row.msPerCall.toFixed(1)} ms per call, ${row.gflops.toFixed(1)} GFLOP/s`);
      }
    } finally {
      model.destroy();
    }
  }

  console.log(`\n| dtype | batch × length | sentences/s | ms per call | GFLOP/s |\n|---|---|---|---|---|`);
  for (const r of rows) console.log(`| ${r.dtype} | ${r.batch} × ${r.length} | ${r.sentencesPerSecond.toFixed(1)} | ${r.msPerCall.toFixed(1)} | ${r.gflops.toFixed(1)} |`);
  console.log(`\n${gpu.adapterName}, copy bandwidth ${copyGBps.toFixed(1)} GB/s in the same run.`);
  mkdirSync('bench-output', { recursive: true });
  writeFileSync('bench-output/embed.json', JSON.stringify({ adapter: gpu.adapterName, date: new Date().toISOString(), model: 'MiniLM-L6 (random weights)', copyGBps, runs, results: rows }, null, 2));
  console.log('wrote bench-output/embed.json');
  return 0;
}
