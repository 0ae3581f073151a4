/**
 * `npm run bench:load`: how long a 1B-shaped checkpoint takes to load, and how much JS memory that needs.
 * Writes TinyLlama-1.1B-shaped random checkpoints (its real config and tensor names, the Llama-2 tokenizer)
 * to a temp folder when absent: F16 and BF16, each as one model.safetensors and as 2 shards. Then, in one
 * run: the time to simply read every weight byte (the floor, page cache warm), and a load of each checkpoint
 * in each dtype with per-stage seconds and bytes (from onProgress), peak JS heap + ArrayBuffers, peak RSS and
 * GPU bytes. Then the chat page (production build, headless Chromium on SwiftShader) loading stories260K: time
 * to ready on the first visit (downloading into IndexedDB) and on reload (from the cache), with when each load
 * stage ran, a first reply sent at ready, and when every kernel was compiled; then each pipeline the engine
 * compiles for it, timed one at a time in Node on this run's adapter, before or after ready. Options:
 * --checkpoints=f16,bf16,f16-sharded,bf16-sharded (empty: the page alone) --dtypes=f16,q8,q4 --no-tune
 * --no-page --dir=<folder>. Prints a table and writes bench-output/load.json.
 */
import { copyFileSync, existsSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { f32ToF16Bits } from '../gpu/f16';
import { acquireNodeGpu } from '../gpu/node';
import { folderFiles } from '../model/files-node';
import { createEngine } from '../engine/engine';
import { loadModel } from '../model/load';
import type { Gpu } from '../gpu/device';
import { createBuffer, createTensor } from '../gpu/tensor';
import { createQuantizeStatus, QuantizeDispatch } from '../kernels/quantize/quantize';
import type { Page } from 'playwright-core';
import { startPreviewBrowser } from '../dev/browser';
import type { ChatPageState } from '../ui/chat/app';

/** TinyLlama/TinyLlama-1.1B-Chat-v1.0's config.json (the fields the loader reads). */
const TINYLLAMA_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 2048,
  intermediate_size: 5632,
  num_hidden_layers: 22,
  num_attention_heads: 32,
  num_key_value_heads: 4,
  max_position_embeddings: 2048,
  hidden_act: 'silu',
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  rope_scaling: null,
  attention_bias: false,
  tie_word_embeddings: false,
  vocab_size: 32000,
  bos_token_id: 1,
  eos_token_id: 2,
};

const CHECKPOINTS = ['f16', 'bf16', 'f16-sharded', 'bf16-sharded'] as const;
type CheckpointName = (typeof CHECKPOINTS)[number];
const LOAD_DTYPES = ['f16', 'q8', 'q4'] as const;
type LoadDtype = (typeof LOAD_DTYPES)[number];

interface TensorPlan {
  name: string;
  shape: number[];
  /** Norm weights are drawn near 1, matrices near 0. */
  norm: boolean;
}

function tensorPlan(): TensorPlan[] {
  const c = TINYLLAMA_CONFIG;
  const D = c.hidden_size;
  const I = c.intermediate_size;
  const hd = D / c.num_attention_heads;
  const kv = c.num_key_value_heads * hd;
  const out: TensorPlan[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocab_size, D], norm: false }];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      { name: `${p}input_layernorm.weight`, shape: [D], norm: true },
      { name: `${p}self_attn.q_proj.weight`, shape: [D, D], norm: false },
      { name: `${p}self_attn.k_proj.weight`, shape: [kv, D], norm: false },
      { name: `${p}self_attn.v_proj.weight`, shape: [kv, D], norm: false },
      { name: `${p}self_attn.o_proj.weight`, shape: [D, D], norm: false },
      { name: `${p}post_attention_layernorm.weight`, shape: [D], norm: true },
      { name: `${p}mlp.gate_proj.weight`, shape: [I, D], norm: false },
      { name: `${p}mlp.up_proj.weight`, shape: [I, D], norm: false },
      { name: `${p}mlp.down_proj.weight`, shape: [D, I], norm: false },
    );
  }
  out.push({ name: 'model.norm.weight', shape: [D], norm: true }, { name: 'lm_head.weight', shape: [c.vocab_size, D], norm: false });
  return out;
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * 4096 precomputed 16-bit patterns of N(mean, std²) values, so drawing 10⁹ weights costs one xorshift and one
 * lookup each (the values need no more randomness than that to exercise the loader and the quantizer).
 */
function valueTable(dtype: 'F16' | 'BF16', mean: number, std: number): Uint16Array {
  const table = new Uint16Array(4096);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  for (let i = 0; i < table.length; i++) {
    // Inverse-CDF-free normal: Box–Muller on a fixed grid is enough for a table.
    const u1 = (i + 0.5) / table.length;
    const u2 = ((i * 0.6180339887) % 1) + 1e-9;
    const v = mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    if (dtype === 'F16') table[i] = f32ToF16Bits(v);
    else {
      f32[0] = v;
      table[i] = (u32[0] + 0x8000) >>> 16;
    }
  }
  return table;
}

/** Writes one safetensors file of `tensors`, generated a few MiB at a time (never the whole file in memory). */
function writeCheckpointFile(path: string, tensors: TensorPlan[], dtype: 'F16' | 'BF16', seed: number): void {
  const entries: string[] = [];
  let offset = 0;
  for (const t of tensors) {
    const bytes = numel(t.shape) * 2;
    entries.push(`${JSON.stringify(t.name)}:{"dtype":"${dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + bytes}]}`);
    offset += bytes;
  }
  const json = Buffer.from(`{${entries.join(',')}}`);
  const headerLength = Math.ceil(json.byteLength / 8) * 8;
  const prefix = Buffer.alloc(8 + headerLength, 0x20);
  prefix.writeUInt32LE(headerLength, 0);
  prefix.writeUInt32LE(0, 4);
  json.copy(prefix, 8);
  const weights = valueTable(dtype, 0, 0.02);
  const norms = valueTable(dtype, 1, 0.1);
  const chunk = new Uint16Array(1 << 22);
  let state = seed >>> 0 || 1;
  const partial = `${path}.partial`;
  const fd = openSync(partial, 'w');
  try {
    writeSync(fd, prefix);
    for (const t of tensors) {
      const table = t.norm ? norms : weights;
      for (let left = numel(t.shape); left > 0; ) {
        const n = Math.min(left, chunk.length);
        for (let i = 0; i < n; i++) {
          state ^= state << 13;
          state ^= state >>> 17;
          state ^= state << 5;
          chunk[i] = table[(state >>> 0) & 4095];
        }
        writeSync(fd, new Uint8Array(chunk.buffer, 0, n * 2));
        left -= n;
      }
    }
  } finally {
    closeSync(fd);
  }
  renameSync(partial, path);
}

/** The checkpoint folder, written first when absent. */
function ensureCheckpoint(root: string, name: CheckpointName, tokenizerDir: string): string {
  const dir = join(root, name);
  const dtype = name.startsWith('bf16') ? 'BF16' : 'F16';
  const sharded = name.endsWith('-sharded');
  const tensors = tensorPlan();
  const files = sharded ? ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'] : ['model.safetensors'];
  if (files.every((f) => existsSync(join(dir, f)))) return dir;
  mkdirSync(dir, { recursive: true });
  console.log(`writing ${dir} (${dtype}${sharded ? ', 2 shards' : ''}) ...`);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...TINYLLAMA_CONFIG, torch_dtype: dtype === 'F16' ? 'float16' : 'bfloat16' }, null, 2));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(tokenizerDir, f), join(dir, f));
  if (!sharded) {
    writeCheckpointFile(join(dir, files[0]), tensors, dtype, 1);
    return dir;
  }
  const half = tensors.findIndex((t) => t.name.startsWith(`model.layers.${TINYLLAMA_CONFIG.num_hidden_layers >> 1}.`));
  const parts = [tensors.slice(0, half), tensors.slice(half)];
  const weightMap: Record<string, string> = {};
  parts.forEach((part, i) => {
    for (const t of part) weightMap[t.name] = files[i];
    writeCheckpointFile(join(dir, files[i]), part, dtype, i + 1);
  });
  const totalSize = tensors.reduce((s, t) => s + numel(t.shape) * 2, 0);
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }));
  return dir;
}

function weightFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.safetensors'))
    .map((f) => join(dir, f));
}

/** Seconds to read every byte of `paths` into one reused 16 MiB buffer: the floor of any load. */
async function readFloor(paths: string[]): Promise<{ seconds: number; bytes: number }> {
  const buffer = new Uint8Array(16 << 20);
  const t0 = performance.now();
  let bytes = 0;
  for (const path of paths) {
    const handle = await open(path, 'r');
    try {
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) break;
        bytes += bytesRead;
      }
    } finally {
      await handle.close();
    }
  }
  return { seconds: (performance.now() - t0) / 1000, bytes };
}

interface StageFigures {
  /** Seconds from the load's start to the stage's first and last report. */
  start: number;
  end: number;
  /** The last report's done / total (bytes or steps, as the stage reports them). */
  done: number;
  total: number;
}

interface LoadResult {
  checkpoint: CheckpointName;
  dtype: LoadDtype;
  seconds: number;
  stages: Record<string, StageFigures>;
  peakJsMiB: number;
  /** The process's peak so far (it only grows across the loads of one run). */
  peakRssMiB: number;
  gpuMiB: number;
  ratioToFloor: number;
  /** CPU seconds of this process during the load (all threads: a software adapter's work included). */
  cpuSeconds: number;
  /**
   * The GPU quantizer alone on as many elements as the load quantized (16 MiB launches from one staging
   * buffer, no file reads or uploads), in the same process: the part of the load no I/O change can remove.
   */
  quantizeAloneSeconds?: number;
  kernelShapes?: unknown;
}

const MiB = 1024 * 1024;

/** heapUsed + arrayBuffers (ArrayBuffers live outside the V8 heap): the memory a browser tab would hold. */
function jsBytes(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

async function benchLoad(dir: string, checkpoint: CheckpointName, dtype: LoadDtype, tune: boolean, floorSeconds: number): Promise<LoadResult> {
  const gpu = await acquireNodeGpu();
  globalThis.gc?.();
  let peakJs = jsBytes();
  const sample = () => {
    peakJs = Math.max(peakJs, jsBytes());
  };
  const timer = setInterval(sample, 10);
  const stages: Record<string, StageFigures> = {};
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  try {
    const loaded = await loadModel(gpu, folderFiles(dir), {
      dtype,
      tune,
      contextLength: 2048,
      onProgress: (p: object) => {
        const q = p as Record<string, unknown>;
        sample();
        const stage = typeof q.stage === 'string' ? q.stage : 'read';
        const done = Number(q.done ?? q.loadedBytes ?? 0);
        const total = Number(q.total ?? q.totalBytes ?? 0);
        const at = (performance.now() - t0) / 1000;
        const s = (stages[stage] ??= { start: at, end: at, done, total });
        s.end = at;
        s.done = done;
        s.total = total;
      },
    });
    sample();
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const quantized = stages.quantize?.done ?? 0;
    const result: LoadResult = {
      checkpoint,
      dtype,
      seconds,
      stages,
      peakJsMiB: peakJs / MiB,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      gpuMiB: loaded.model.allocatedBytes / MiB,
      ratioToFloor: seconds / floorSeconds,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      kernelShapes: loaded.model.kernelShapes,
    };
    loaded.model.destroy();
    if (quantized > 0 && (dtype === 'q8' || dtype === 'q4')) result.quantizeAloneSeconds = await quantizeAlone(gpu, dtype, quantized);
    return result;
  } finally {
    clearInterval(timer);
    gpu.device.destroy();
  }
}

interface PageLoad {
  visit: 'first' | 'reload';
  /** From navigation to the page saying ready. */
  seconds: number;
  /** From the download's last progress event to ready (the first visit's target), or null when nothing downloaded. */
  afterDownloadSeconds: number | null;
  /** From navigation to the page starting the load (app start-up). */
  startSeconds: number;
  /**
   * CPU seconds Chromium's processes spent meanwhile (all threads, GPU process included): on a shared machine
   * the wall times stretch with the load of others, this much less.
   */
  browserCpuSeconds: number;
  /** Each stage's first and last progress event, seconds from the load's start. */
  stages: Record<string, { first: number; last: number }>;
  /** From the load's start to every kernel compiled (those for long prompts compile after ready). */
  compiledSeconds: number;
  /**
   * A first reply sent the moment the page is ready (a short prompt, the page's sampling settings, 16 tokens
   * at most): seconds from sending to its end and to its first token. Ready must mean usable, so this shows
   * any compile still ahead of the reply.
   */
  firstReply: { seconds: number; firstTokenSeconds: number; tokens: number };
}

/** CPU seconds (user + system, reaped children included) of every process descended from this one (Linux). */
function descendantCpuSeconds(): number {
  const stats = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .flatMap((pid) => {
      try {
        // Fields after the parenthesised command name: state ppid ... utime(14) stime(15) cutime(16) cstime(17).
        const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
        return [{ pid: Number(pid), ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) }];
      } catch {
        return []; // exited meanwhile
      }
    });
  const children = new Map<number, typeof stats>();
  for (const s of stats) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s]);
  let ticks = 0;
  const visit = (pid: number) => {
    for (const c of children.get(pid) ?? []) {
      ticks += c.ticks;
      visit(c.pid);
    }
  };
  visit(process.pid);
  return ticks / 100; // USER_HZ
}

interface PipelineCompile {
  /** The kernel and its specialisation key, as the pipeline cache names it. */
  pipeline: string;
  seconds: number;
  /** Whether the engine had this compiled before it was returned (before the chat page says ready). */
  beforeReady: boolean;
}

/**
 * Every pipeline the engine compiles for stories260K (as the chat page's worker creates it), one at a time so
 * each one's seconds are its own, in Node on the adapter of this run (SwiftShader by default, the chat page's).
 */
async function compileList(): Promise<PipelineCompile[]> {
  const gpu = await acquireNodeGpu();
  const { device } = gpu;
  const compile = device.createComputePipelineAsync.bind(device);
  const list: PipelineCompile[] = [];
  let ready = false;
  let previous: Promise<unknown> = Promise.resolve();
  device.createComputePipelineAsync = (descriptor: GPUComputePipelineDescriptor) => {
    const timed = previous.then(async () => {
      const t0 = performance.now();
      const pipeline = await compile(descriptor);
      list.push({ pipeline: descriptor.label ?? '?', seconds: (performance.now() - t0) / 1000, beforeReady: !ready });
      return pipeline;
    });
    previous = timed.catch(() => {});
    return timed;
  };
  try {
    const engine = await createEngine(folderFiles(resolve(process.env.WEBGPU_LLM_MODELS ?? '../shared/models', 'stories260K')), { gpu });
    ready = true;
    await engine.whenCompiled();
    await engine.dispose();
    return list;
  } finally {
    gpu.device.destroy();
  }
}

function formatCompileList(list: PipelineCompile[]): string {
  const total = (beforeReady: boolean) => list.filter((c) => c.beforeReady === beforeReady).reduce((s, c) => s + c.seconds, 0).toFixed(2);
  const rows = list.map((c) => [c.beforeReady ? 'before ready' : 'after', c.seconds.toFixed(2), c.pipeline]);
  const lines = [['when', 's', 'pipeline'], ['---', '---', '---'], ...rows].map((r) => `| ${r.join(' | ')} |`);
  return `${lines.join('\n')}\nbefore ready ${total(true)} s, after ${total(false)} s`;
}

/** Sends a short message in a new chat at once and waits for the whole reply (see PageLoad.firstReply). */
async function replyOnce(page: Page): Promise<PageLoad['firstReply']> {
  await page.click('.new-chat');
  await page.fill('input[name=maxTokens]', '16');
  await page.fill('.composer textarea', 'Once upon a time');
  const before = await page.evaluateHandle(() => window.__chat!.lastTimings);
  const t0 = performance.now();
  await page.press('.composer textarea', 'Enter');
  // Waits for the reply's timings (or an error) to replace the ones before: a status of 'generating' may come
  // and go between two polls.
  await page.waitForFunction(
    (previous) => {
      const chat = window.__chat!;
      return (chat.lastTimings !== previous || chat.error !== null) && chat.status !== 'generating';
    },
    before,
    { timeout: 600_000 },
  );
  await before.dispose();
  const seconds = (performance.now() - t0) / 1000;
  const reply = await page.evaluate(() => ({ status: window.__chat!.status, error: window.__chat!.error, timings: window.__chat!.lastTimings, usage: window.__chat!.lastUsage }));
  if (reply.status !== 'ready' || !reply.timings || !reply.usage) throw new Error(`the first reply failed: ${reply.error?.name}: ${reply.error?.message}`);
  return { seconds, firstTokenSeconds: reply.timings.time_to_first_token_ms / 1000, tokens: reply.usage.completion_tokens };
}

/** The chat page's time to ready for its default model (stories260K), first visit then reload, in one browser. */
async function benchPage(): Promise<PageLoad[]> {
  const harness = await startPreviewBrowser();
  try {
    const { page } = await harness.newPage();
    const visit = async (kind: PageLoad['visit']): Promise<PageLoad> => {
      const t0 = performance.now();
      const cpu0 = descendantCpuSeconds();
      if (kind === 'first') await page.goto(harness.url('/'));
      else await page.reload();
      await page.waitForFunction(() => window.__chat?.status === 'ready' || window.__chat?.status === 'error', undefined, { timeout: 600_000 });
      const seconds = (performance.now() - t0) / 1000;
      const browserCpuSeconds = descendantCpuSeconds() - cpu0;
      const state = await page.evaluate(() => {
        const chat = window.__chat as ChatPageState;
        return { status: chat.status, error: chat.error, timeline: chat.loadTimeline, sinceNavigation: performance.now() };
      });
      if (state.status !== 'ready') throw new Error(`the chat page failed to load: ${state.error?.name}: ${state.error?.message}`);
      const firstReply = await replyOnce(page);
      // The next visit then meets a GPU process with nothing left compiling for this one, as a later visit would.
      await page.waitForFunction(() => window.__chat?.loadTimeline.compiledMs !== null, undefined, { timeout: 600_000 });
      const compiledMs = await page.evaluate(() => window.__chat!.loadTimeline.compiledMs!);
      const { stages: ms, readyMs } = state.timeline;
      const loadMs = readyMs ?? 0;
      const stages = Object.fromEntries(Object.entries(ms).map(([name, s]) => [name, { first: s.first / 1000, last: s.last / 1000 }]));
      const download = ms.download;
      return {
        visit: kind,
        seconds,
        afterDownloadSeconds: download ? (loadMs - download.last) / 1000 : null,
        startSeconds: seconds - loadMs / 1000,
        browserCpuSeconds,
        stages,
        compiledSeconds: compiledMs / 1000,
        firstReply,
      };
    };
    return [await visit('first'), await visit('reload')];
  } finally {
    await harness.close();
  }
}

function formatPageTable(loads: PageLoad[]): string {
  const stageNames = [...new Set(loads.flatMap((l) => Object.keys(l.stages)))];
  const header = ['visit', 'ready s', 'after download s', 'app start s', 'browser CPU s', 'first reply s (first token s, tokens)', 'all compiled s', ...stageNames.map((s) => `${s} s (from–to)`)];
  const rows = loads.map((l) => [
    l.visit,
    l.seconds.toFixed(2),
    l.afterDownloadSeconds === null ? '–' : l.afterDownloadSeconds.toFixed(2),
    l.startSeconds.toFixed(2),
    l.browserCpuSeconds.toFixed(1),
    `${l.firstReply.seconds.toFixed(2)} (${l.firstReply.firstTokenSeconds.toFixed(2)}, ${l.firstReply.tokens})`,
    l.compiledSeconds.toFixed(2),
    ...stageNames.map((s) => (l.stages[s] ? `${l.stages[s].first.toFixed(2)}–${l.stages[s].last.toFixed(2)}` : '–')),
  ]);
  return [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** Seconds the quantize kernel takes for `elements` f16 weights, in launches of 16 MiB as the load makes them. */
async function quantizeAlone(gpu: Gpu, dtype: 'q8' | 'q4', elements: number): Promise<number> {
  const pieceElements = 8 << 20;
  const staging = await createBuffer(gpu, 'bench staging', pieceElements * 2, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
  const halves = new Uint16Array(pieceElements);
  let state = 1;
  for (let i = 0; i < halves.length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    halves[i] = 0x2000 + (state >>> 20); // positive halves from 2^-7 to 2^-4, as small weights are
  }
  gpu.device.queue.writeBuffer(staging, 0, halves);
  const out = await createTensor(gpu, 'bench quantized', dtype, [8, pieceElements / 8]);
  const status = await createQuantizeStatus(gpu);
  const quantize = await QuantizeDispatch.create(gpu, { input: staging, out, status, slot: 0 });
  await gpu.device.queue.onSubmittedWorkDone();
  const t0 = performance.now();
  for (let done = 0, launches = 0; done < elements; done += pieceElements) {
    quantize.run(0, pieceElements);
    // As the load: wait for the queue every 64 MiB of f16 halves.
    if (++launches % 4 === 0) await gpu.device.queue.onSubmittedWorkDone();
  }
  await gpu.device.queue.onSubmittedWorkDone();
  const seconds = (performance.now() - t0) / 1000;
  quantize.dispose();
  for (const b of [staging, out.buffer, status]) b.destroy();
  return seconds;
}

function formatTable(results: LoadResult[], floor: Record<string, { seconds: number; bytes: number }>): string {
  const stageNames = [...new Set(results.flatMap((r) => Object.keys(r.stages)))];
  const header = ['checkpoint', 'dtype', 'total s', '× read floor', 'CPU s', 'quantize alone s', ...stageNames.map((s) => `${s} s (done/total)`), 'peak JS MiB', 'GPU MiB'];
  const rows = results.map((r) => [
    r.checkpoint,
    r.dtype,
    r.seconds.toFixed(1),
    `${r.ratioToFloor.toFixed(1)}× (${floor[r.checkpoint].seconds.toFixed(2)} s)`,
    r.cpuSeconds.toFixed(1),
    r.quantizeAloneSeconds === undefined ? '–' : r.quantizeAloneSeconds.toFixed(1),
    ...stageNames.map((s) => {
      const st = r.stages[s];
      return st ? `${(st.end - st.start).toFixed(1)} (${st.done}/${st.total})` : '–';
    }),
    r.peakJsMiB.toFixed(0),
    r.gpuMiB.toFixed(0),
  ]);
  return [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      checkpoints: { type: 'string', default: CHECKPOINTS.join(',') },
      dtypes: { type: 'string', default: LOAD_DTYPES.join(',') },
      'no-tune': { type: 'boolean', default: false },
      'no-page': { type: 'boolean', default: false },
      dir: { type: 'string', default: join(tmpdir(), 'webgpu-llm-bench-load') },
    },
  });
  const checkpoints = values.checkpoints.split(',').filter(Boolean).map((c) => {
    if (!(CHECKPOINTS as readonly string[]).includes(c)) throw new Error(`unknown checkpoint ${c}; choose from ${CHECKPOINTS.join(', ')}`);
    return c as CheckpointName;
  });
  const dtypes = values.dtypes.split(',').map((d) => {
    if (!(LOAD_DTYPES as readonly string[]).includes(d)) throw new Error(`unknown dtype ${d}; choose from ${LOAD_DTYPES.join(', ')}`);
    return d as LoadDtype;
  });
  const tokenizerDir = resolve(process.env.WEBGPU_LLM_MODELS ?? '../shared/models', '../tokenizers/llama2');
  const dirs = Object.fromEntries(checkpoints.map((c) => [c, ensureCheckpoint(values.dir, c, tokenizerDir)]));

  const probe = await acquireNodeGpu();
  const adapter = probe.adapterName;
  probe.device.destroy();
  console.log(`adapter: ${adapter} (VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES ?? ''})`);

  const floor: Record<string, { seconds: number; bytes: number }> = {};
  for (const c of checkpoints) {
    const paths = weightFiles(dirs[c]);
    await readFloor(paths); // warms the page cache, as a second load would find it
    floor[c] = await readFloor(paths);
    const gib = paths.reduce((s, p) => s + statSync(p).size, 0) / 2 ** 30;
    console.log(`${c}: ${gib.toFixed(2)} GiB, read floor ${floor[c].seconds.toFixed(2)} s`);
  }

  const results: LoadResult[] = [];
  for (const c of checkpoints) {
    for (const dtype of dtypes) {
      const r = await benchLoad(dirs[c], c, dtype, !values['no-tune'], floor[c].seconds);
      console.log(`${c} ${dtype}: ${r.seconds.toFixed(1)} s (${r.ratioToFloor.toFixed(1)}× the read), peak JS ${r.peakJsMiB.toFixed(0)} MiB, peak RSS ${r.peakRssMiB.toFixed(0)} MiB, GPU ${r.gpuMiB.toFixed(0)} MiB`);
      results.push(r);
    }
  }
  console.log(`\n${formatTable(results, floor)}`);
  let page: PageLoad[] | undefined;
  let compiles: PipelineCompile[] | undefined;
  if (!values['no-page']) {
    page = await benchPage();
    console.log(`\nchat page, stories260K, headless Chromium (SwiftShader):\n${formatPageTable(page)}`);
    compiles = await compileList();
    console.log(`\nits pipelines compiled one at a time, in Node on ${adapter}:\n${formatCompileList(compiles)}`);
  }
  mkdirSync('bench-output', { recursive: true });
  const date = new Date().toISOString();
  writeFileSync('bench-output/load.json', JSON.stringify({ adapter, date, tune: !values['no-tune'], floor, results, page, compiles }, null, 2));
  console.log('wrote bench-output/load.json');
  return 0;
}
