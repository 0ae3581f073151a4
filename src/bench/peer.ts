/**
 * `npm run bench:peer`: this engine (on WebGPU, and on its CPU backend, which runs llama.cpp through wllama
 * under our sampler and KV reuse) against a peer, wllama (@wllama/wllama: llama.cpp in WebAssembly, with its
 * WebGPU backend when it can run) on its own, on the same stories260K weights in the same headless Chromium
 * (Debian's, WebGPU on SwiftShader). The page (src/bench/peer.html) exports the GGUF wllama loads from the
 * model's safetensors with gguf-export.ts: no network. Prints prefill and decode tokens/s side by side
 * with the ratio ours/theirs and writes bench-output/peer.json; when something prevents the comparison it
 * prints why, writes the reason to the JSON, and still exits 0.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Plugin } from 'vite';
import { ROOT, startBrowser } from '../dev/browser';
import type { PeerPageResult, PeerRun } from './peer-page';

const TIMEOUT_MS = 480_000;

/** Cross-origin isolation, so wllama may use its multi-threaded (SharedArrayBuffer) build. */
const isolate: Plugin = {
  name: 'bench:cross-origin-isolation',
  configureServer(server) {
    server.middlewares.use((_req, res, next) => {
      res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
      next();
    });
  },
};

interface PeerReport {
  ok: boolean;
  reason: string | null;
  model: string;
  ours: PeerRun | null;
  oursWasm: PeerRun | null;
  theirs: PeerRun | null;
  /** ours (WebGPU) / theirs. */
  ratio: { prefill: number; decode: number } | null;
  /** ours on the CPU backend / theirs: the cost of driving llama.cpp one token per request. */
  wasmRatio: { prefill: number; decode: number } | null;
  agreement: PeerPageResult['agreement'];
  ggufBytes: number;
  errors: string[];
  pageConsoleErrors: string[];
}

const fmt = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : String(x));

function table(r: PeerReport): string {
  const rows = ['| backend | prompt tokens | generated | prefill tok/s | decode tok/s |', '|---|---:|---:|---:|---:|'];
  for (const run of [r.ours, r.oursWasm, r.theirs]) {
    if (run) rows.push(`| ${run.backend} | ${run.promptTokens} | ${run.generatedTokens} | ${fmt(run.prefillTokensPerSecond)} | ${fmt(run.decodeTokensPerSecond)} |`);
  }
  if (r.ratio) rows.push(`| **ratio ours (WebGPU)/theirs** | | | **${r.ratio.prefill.toFixed(2)}x** | **${r.ratio.decode.toFixed(2)}x** |`);
  if (r.wasmRatio) rows.push(`| **ratio ours (CPU)/theirs** | | | **${r.wasmRatio.prefill.toFixed(2)}x** | **${r.wasmRatio.decode.toFixed(2)}x** |`);
  return rows.join('\n');
}

function write(report: PeerReport): void {
  const dir = resolve(ROOT, 'bench-output');
  mkdirSync(dir, { recursive: true });
  writeFileSync(resolve(dir, 'peer.json'), `${JSON.stringify(report, null, 2)}\n`);
}

export async function main(): Promise<number> {
  const report: PeerReport = {
    ok: false,
    reason: null,
    model: 'stories260K',
    ours: null,
    oursWasm: null,
    theirs: null,
    ratio: null,
    wasmRatio: null,
    agreement: null,
    ggufBytes: 0,
    errors: [],
    pageConsoleErrors: [],
  };
  const finish = (): number => {
    if (report.reason) console.log(`peer comparison incomplete: ${report.reason}`);
    console.log(table(report));
    for (const run of [report.ours, report.oursWasm, report.theirs]) if (run) for (const n of run.notes) console.log(`  [${run.backend}] ${n}`);
    if (report.agreement) {
      const a = report.agreement;
      console.log(`greedy output agreement: ${a.identical ? 'identical' : `first ${a.matchingPrefixChars} of ${a.comparedChars} characters match`}`);
      console.log(`  ours:   ${JSON.stringify(report.ours?.text.slice(0, 160))}`);
      console.log(`  theirs: ${JSON.stringify(report.theirs?.text.slice(0, 160))}`);
    }
    write(report);
    console.log('wrote bench-output/peer.json');
    return 0;
  };

  if (!existsSync(resolve(ROOT, 'node_modules/@wllama/wllama/esm/wasm/wllama.wasm'))) {
    report.reason = '@wllama/wllama is not installed (npm install)';
    return finish();
  }
  let harness;
  try {
    harness = await startBrowser([isolate]);
  } catch (e) {
    report.reason = e instanceof Error ? e.message : String(e);
    return finish();
  }
  try {
    const { page, consoleErrors } = await harness.newPage();
    report.pageConsoleErrors = consoleErrors;
    await page.goto(harness.url('/src/bench/peer.html'));
    await page.waitForFunction(() => window.__peerResult !== undefined, undefined, { timeout: TIMEOUT_MS, polling: 500 });
    const r = await page.evaluate(() => window.__peerResult!);
    report.ours = r.ours;
    report.oursWasm = r.oursWasm;
    report.theirs = r.theirs;
    report.errors = r.errors;
    report.agreement = r.agreement;
    report.ggufBytes = r.ggufBytes;
    const ratio = (ours: PeerRun, theirs: PeerRun) => ({
      prefill: ours.prefillTokensPerSecond / theirs.prefillTokensPerSecond,
      decode: ours.decodeTokensPerSecond / theirs.decodeTokensPerSecond,
    });
    if (r.oursWasm && r.theirs) report.wasmRatio = ratio(r.oursWasm, r.theirs);
    if (r.ours && r.theirs) {
      report.ok = true;
      report.ratio = ratio(r.ours, r.theirs);
    } else {
      report.reason = r.errors.join(' | ') || 'a side produced no result';
    }
  } catch (e) {
    report.reason = e instanceof Error ? e.message : String(e);
  } finally {
    await harness.close();
  }
  return finish();
}
