/**
 * Streaming load: the GPU buffers a checkpoint streams into, slice by slice, hold exactly the bytes the
 * whole-tensor path produces (canonical CPU tensors from loadCanonicalWeights, quantized whole by the CPU
 * quantizer), for every architecture, checkpoint dtype and load dtype, single file and shards; quantized on
 * the GPU, each block is the CPU's or meets its rule; JS memory stays bounded by the
 * slice, not the model; an aborted load leaves no GPU buffer behind.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { openSafetensors, openShardedSafetensors, type TensorSource } from '../../src/formats/safetensors';
import { writeSafetensors, type TensorToWrite } from '../../src/dev/safetensors-writer';
import { bytesSource } from '../../src/formats/sources';
import type { Gpu } from '../../src/gpu/device';
import { dataBytes, readBuffer, tensorBytes, type DType, type Tensor } from '../../src/gpu/tensor';
import { LAYER_TENSORS, MODEL_TENSORS, type Arch } from '../../src/model/architectures';
import { parseModelConfig, type ModelSpec } from '../../src/model/config';
import { memoryFiles } from '../../src/model/files';
import { folderFiles } from '../../src/model/files-node';
import { loadModel } from '../../src/model/load';
import { randomModel, SMALL_MODELS, type RandomModelOptions } from '../../src/dev/random-model';
import { checkpointStream } from '../../src/model/stream';
import { uploadStream } from '../../src/model/upload';
import { isSplit, rowParts, type BindingLimit, type Weight } from '../../src/model/split';
import { loadCanonicalWeights, safetensorsWeightReader, type CanonicalWeights, type WeightDtype, type WeightTensor } from '../../src/model/weights';
import { f16BitsToF32 } from '../../src/gpu/f16';
import { QUANT_INT_WORDS, quantize, type QuantDType } from '../../src/quant/quantize';
import { absmaxBlockErrors, blockErrors } from '../../src/kernels/quantize/reference';
import { modelPath } from '../models';
import { freshSeed, testGpu } from '../gpu';

type CheckpointDtype = 'F32' | 'F16' | 'BF16';
type LoadDtype = WeightDtype | QuantDType;

/** f32 → bf16 bits, round to nearest even (as torch does). */
function toBf16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) out[i] = (bits[i] + 0x7fff + ((bits[i] >>> 16) & 1)) >>> 16;
  return out;
}

function checkpointTensors(tensors: Map<string, WeightTensor>, dtype: CheckpointDtype): TensorToWrite[] {
  return [...tensors.entries()].map(([name, t]) => {
    if (dtype === 'F16') {
      if (t.dtype !== 'f16') throw new Error('an F16 checkpoint needs an f16 random model');
      return { name, dtype, shape: t.shape, data: t.data };
    }
    if (t.dtype !== 'f32') throw new Error(`a ${dtype} checkpoint needs an f32 random model`);
    return dtype === 'F32' ? { name, dtype, shape: t.shape, data: t.data } : { name, dtype, shape: t.shape, data: toBf16(t.data) };
  });
}

/** The checkpoint as one file or as two shards with an index. */
async function openCheckpoint(tensors: TensorToWrite[], sharded: boolean): Promise<TensorSource> {
  if (!sharded) return openSafetensors(bytesSource(writeSafetensors(tensors), 'model.safetensors'));
  const half = Math.ceil(tensors.length / 2);
  const shards = new Map([
    ['a.safetensors', writeSafetensors(tensors.slice(0, half))],
    ['b.safetensors', writeSafetensors(tensors.slice(half))],
  ]);
  const weightMap = Object.fromEntries(tensors.map((t, i) => [t.name, i < half ? 'a.safetensors' : 'b.safetensors']));
  return openShardedSafetensors(JSON.stringify({ metadata: {}, weight_map: weightMap }), async (shard) => bytesSource(shards.get(shard)!, shard));
}

/** The bytes the whole-tensor path uploads for one canonical tensor (what the GPU buffer must hold). */
function expectedBytes(t: WeightTensor, as: 'f32' | 'raw' | QuantDType): Uint8Array {
  if (as === 'q8' || as === 'q4') {
    const words = quantize(as, t.data, t.shape);
    return new Uint8Array(words.buffer, 0, words.byteLength);
  }
  if (as === 'f32' && t.dtype === 'f16') {
    const wide = Float32Array.from(t.data, (b) => f16BitsToF32(b));
    return new Uint8Array(wide.buffer);
  }
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** The rows [first, first + count) of a canonical matrix. */
function rowRange(t: WeightTensor, first: number, count: number): WeightTensor {
  const cols = t.shape[1] ?? 1;
  const data = t.data.subarray(first * cols, (first + count) * cols);
  return (t.dtype === 'f16' ? { dtype: 'f16', shape: [count, cols], data } : { dtype: 'f32', shape: [count, cols], data }) as WeightTensor;
}

async function expectBytes(gpu: Gpu, what: string, actual: Tensor | undefined, expected: Uint8Array): Promise<void> {
  if (!actual) throw new Error(`${what}: not uploaded`);
  const size = dataBytes(actual.dtype, actual.shape);
  expect(size, what).toBe(expected.byteLength);
  const bytes = new Uint8Array(await readBuffer(gpu, actual.buffer, Math.ceil(size / 4) * 4), 0, size);
  // One comparison per tensor: a mismatch names the first differing byte.
  const first = bytes.findIndex((b, i) => b !== expected[i]);
  expect(first, `${what}: first differing byte`).toBe(-1);
}

/**
 * A tensor the GPU quantized: each block holds the CPU quantizer's words, or others that meet its rule (a
 * squared error at most the absmax scale's), as the kernel may take the other side of a near tie.
 */
async function expectQuantized(gpu: Gpu, what: string, actual: Tensor | undefined, t: WeightTensor, as: QuantDType): Promise<void> {
  if (!actual) throw new Error(`${what}: not uploaded`);
  const expected = quantize(as, t.data, t.shape);
  const words = new Uint32Array(await readBuffer(gpu, actual.buffer, expected.byteLength));
  const x = t.dtype === 'f16' ? Float32Array.from(t.data, (b) => f16BitsToF32(b)) : t.data;
  const errors = blockErrors(as, x, words);
  const bounds = absmaxBlockErrors(as, x);
  const intWords = QUANT_INT_WORDS[as];
  const scaleBase = errors.length * intWords;
  for (let b = 0; b < errors.length; b++) {
    const scale = (w: Uint32Array) => (w[scaleBase + (b >> 1)] >>> ((b & 1) * 16)) & 0xffff;
    const same = scale(words) === scale(expected) && words.subarray(b * intWords, (b + 1) * intWords).every((w, i) => w === expected[b * intWords + i]);
    if (!same) expect(errors[b], `${what}: block ${b} differs from the CPU's and exceeds the absmax scale's error`).toBeLessThanOrEqual(bounds[b]);
  }
  expect(words.subarray(scaleBase + Math.ceil(errors.length / 2)), `${what}: scale padding`).toEqual(expected.subarray(scaleBase + Math.ceil(errors.length / 2)));
}

async function checkStreamed(
  gpu: Gpu,
  spec: ModelSpec,
  source: TensorSource,
  canonical: CanonicalWeights,
  dtype: WeightDtype,
  quant: QuantDType | undefined,
  quantizeOn: 'gpu' | 'cpu',
  split?: { bindingLimit: BindingLimit; sliceBytes: number },
): Promise<Weight[]> {
  const buffers: GPUBuffer[] = [];
  const track = (t: Tensor) => (buffers.push(t.buffer), t);
  // sliceBytes 1 makes every slice one row where cols is a multiple of 64 (else the fewest rows that are).
  const stream = checkpointStream(spec, source, { dtype, sliceBytes: split?.sliceBytes ?? 1 });
  const uploaded = await uploadStream(gpu, spec, stream, { quantize: quant, quantizeOn, track, bindingLimit: split?.bindingLimit });
  const expectTensor = (what: string, actual: Tensor, w: WeightTensor, as: 'f32' | 'raw' | QuantDType) =>
    (as === 'q8' || as === 'q4') && quantizeOn === 'gpu' ? expectQuantized(gpu, what, actual, w, as) : expectBytes(gpu, what, actual, expectedBytes(w, as));
  // Each buffer (one, or a split matrix's parts) holds what the whole-tensor path uploads for its rows.
  const expectBuffer = async (what: string, actual: Weight | undefined, w: WeightTensor, as: 'f32' | 'raw' | QuantDType) => {
    if (!actual) throw new Error(`${what}: not uploaded`);
    const parts = rowParts(actual);
    if (parts.length === 1) return expectTensor(what, parts[0].tensor, w, as);
    for (const { tensor, firstRow } of parts) await expectTensor(`${what} rows ${firstRow}+${tensor.shape[0]}`, tensor, rowRange(w, firstRow, tensor.shape[0]), as);
  };
  // Gemma's norm weights are stored as 1 + w (upload.ts), so its norm kernels need not know.
  const asStored = (kind: string, w: WeightTensor): WeightTensor => {
    if (!spec.normPlusOne || kind !== 'norm') return w;
    const x = w.dtype === 'f16' ? Float32Array.from(w.data, (b) => f16BitsToF32(b)) : w.data;
    return { dtype: 'f32', shape: w.shape, data: Float32Array.from(x, (v) => 1 + v) };
  };
  try {
    const matrixAs = (name: string) => (quant === 'q4' && name === 'lmHead' ? 'q8' : (quant ?? 'raw'));
    for (const [name, t] of Object.entries(MODEL_TENSORS)) {
      const key = name as keyof typeof MODEL_TENSORS;
      const w = canonical[key];
      if (!w || !t.present(spec)) continue;
      const as = key === 'positionEmbedding' || t.kind !== 'matrix' ? 'f32' : key === 'embedding' ? 'raw' : matrixAs(key);
      await expectBuffer(name, uploaded.model[key], asStored(t.kind, w), as);
    }
    if (spec.tiedEmbeddings) {
      if (quant) await expectBuffer('tied LM head', uploaded.model.lmHead, canonical.embedding, matrixAs('lmHead'));
      else expect(uploaded.model.lmHead).toBe(uploaded.model.embedding);
    }
    for (const [l, layer] of canonical.layers.entries()) {
      for (const [name, t] of Object.entries(LAYER_TENSORS)) {
        const key = name as keyof typeof LAYER_TENSORS;
        const w = layer[key];
        if (!w) continue;
        await expectBuffer(`layer ${l} ${name}`, uploaded.layers[l][key], asStored(t.kind, w), t.kind === 'matrix' ? matrixAs(key) : 'f32');
      }
    }
    return [...Object.values(uploaded.model), ...uploaded.layers.flatMap((l) => Object.values(l))].filter((w) => w !== undefined && isSplit(w));
  } finally {
    for (const b of buffers) b.destroy();
  }
}

/** Odd widths: q, k and v rows do not start on 32-element blocks, so the fused matrix takes the whole-tensor way. */
const ODD_LLAMA: RandomModelOptions = { ...SMALL_MODELS.llama, hiddenSize: 36, numHeads: 2, numKvHeads: 1, headDim: 18, intermediateSize: 50, ropeScaling: null };

const cases: { label: string; arch: Arch; options: RandomModelOptions }[] = [
  ...(Object.keys(SMALL_MODELS) as Arch[]).map((arch) => ({ label: arch, arch, options: SMALL_MODELS[arch] })),
  { label: 'llama, odd widths', arch: 'llama', options: ODD_LLAMA },
];

describe('streaming load writes the same GPU bytes as the whole-tensor path', () => {
  for (const c of cases) {
    it(c.label, async () => {
      const gpu = await testGpu();
      const seed = freshSeed();
      const f32Model = randomModel(c.arch, c.options, seed);
      const f16Model = randomModel(c.arch, { ...c.options, dtype: 'f16' }, seed);
      const spec = parseModelConfig(f32Model.config);
      const plans: [CheckpointDtype, LoadDtype[]][] = [
        ['F32', ['f32', 'f16', 'q8']],
        ['F16', ['f16', 'f32', 'q4']],
        ['BF16', ['f16', 'q4', 'q8']],
      ];
      for (const [checkpointDtype, loadDtypes] of plans) {
        const tensors = checkpointTensors(checkpointDtype === 'F16' ? f16Model.tensors : f32Model.tensors, checkpointDtype);
        for (const [i, loadDtype] of loadDtypes.entries()) {
          const sharded = i === 0;
          const source = await openCheckpoint(tensors, sharded);
          const quant = loadDtype === 'q8' || loadDtype === 'q4' ? loadDtype : undefined;
          const dtype: WeightDtype = quant ? 'f16' : (loadDtype as WeightDtype);
          const canonical = await loadCanonicalWeights(spec, safetensorsWeightReader(source), { dtype });
          // Quantized: the CPU quantizer's exact words, and the GPU quantizer's blocks by the rule.
          for (const quantizeOn of quant ? (['cpu', 'gpu'] as const) : (['gpu'] as const)) {
            await checkStreamed(gpu, spec, source, canonical, dtype, quant, quantizeOn).catch((e: Error) => {
              throw new Error(`${checkpointDtype} checkpoint${sharded ? ' (2 shards)' : ''} loaded as ${loadDtype} (quantized on the ${quantizeOn}), seed ${seed}: ${e.message}`);
            });
          }
        }
      }
    });
  }
});

describe('streaming load splits matrices larger than the binding limit into row ranges', () => {
  for (const arch of ['llama', 'qwen2', 'gpt2'] satisfies Arch[]) {
    it(`${arch}: each part holds the whole-tensor bytes of its rows (f32, f16, q8, q4), slices crossing part boundaries`, async () => {
      const gpu = await testGpu();
      const seed = freshSeed();
      const { tensors, config } = randomModel(arch, SMALL_MODELS[arch], seed);
      const spec = parseModelConfig(config);
      const source = await openCheckpoint(checkpointTensors(tensors, 'F32'), false);
      for (const loadDtype of ['f32', 'f16', 'q8', 'q4'] satisfies LoadDtype[]) {
        const quant = loadDtype === 'q8' || loadDtype === 'q4' ? loadDtype : undefined;
        const dtype: WeightDtype = loadDtype === 'f32' ? 'f32' : 'f16';
        // The largest 64-row block of any matrix (its least part): every matrix of a few times more rows splits.
        // Slices of 48 rows of the hidden width (fewer of the wider matrices) straddle the parts.
        const matrixDtype = quant ?? dtype;
        const blocks: [DType, number][] = [[dtype, spec.hiddenSize], [matrixDtype, spec.intermediateSize], [matrixDtype, spec.numHeads * spec.headDim], [quant === 'q4' ? 'q8' : matrixDtype, spec.hiddenSize]];
        const bindingLimit = { bytes: Math.max(...blocks.map(([d, cols]) => tensorBytes(d, [64, cols]))), name: 'maxBindingSize' };
        const split = { bindingLimit, sliceBytes: 48 * spec.hiddenSize * 4 };
        const canonical = await loadCanonicalWeights(spec, safetensorsWeightReader(source), { dtype });
        const splitTensors = await checkStreamed(gpu, spec, source, canonical, dtype, quant, 'gpu', split).catch((e: Error) => {
          throw new Error(`loaded as ${loadDtype}, seed ${seed}: ${e.message}`);
        });
        // The embedding and the LM head (one tensor when tied and unquantized) at least; the tall layer matrices too.
        expect(splitTensors.length, loadDtype).toBeGreaterThanOrEqual(2);
      }
    });
  }
});

describe('streaming load bounds memory and cleans up', () => {
  const dir = mkdtempSync(join(tmpdir(), 'webgpu-llm-stream-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A ~75 MB F32 Llama checkpoint in a folder, read through file handles as the CLI does. */
  async function writeLargeCheckpoint(): Promise<{ bytes: number }> {
    const options: RandomModelOptions = { ...SMALL_MODELS.llama, vocabSize: 8192, hiddenSize: 512, intermediateSize: 1376, numLayers: 4, numHeads: 8, numKvHeads: 4, headDim: 64, ropeScaling: null };
    const { config, tensors } = randomModel('llama', options, freshSeed());
    const file = writeSafetensors(checkpointTensors(tensors, 'F32'));
    writeFileSync(join(dir, 'model.safetensors'), file);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    writeFileSync(join(dir, 'tokenizer.json'), (await folderFiles(modelPath('stories260K')).text('tokenizer.json'))!);
    return { bytes: file.byteLength };
  }

  // Live memory, not garbage awaiting collection: collect before each sample.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const jsBytes = () => {
    gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };

  it('a checkpoint many times the slice size loads with JS memory bounded by the slice, not the model', async () => {
    const gpu = await testGpu();
    const { bytes } = await writeLargeCheckpoint();
    const sliceBytes = 1 << 20;
    const before = jsBytes();
    let peak = before;
    // A full collection per sample is slow: every 8th slice read is enough to see memory grow with the model.
    let reads = 0;
    const onProgress = (p: { stage: string }) => p.stage === 'read' && ++reads % 8 === 0 && (peak = Math.max(peak, jsBytes()));
    const { model } = await loadModel(gpu, folderFiles(dir), { dtype: 'f16', contextLength: 64, sliceBytes, onProgress });
    model.destroy();
    // The whole-tensor path held every canonical tensor (≥ the checkpoint's bytes); streaming holds a slice
    // or two (read, converted) and the tokenizer.
    expect(bytes).toBeGreaterThan(70e6);
    expect(reads).toBeGreaterThan(64);
    expect(peak - before, `peak ${peak - before} bytes over the start`).toBeLessThan(8 * sliceBytes);
  });

  /**
   * Runs `body` counting the device's buffers created and not yet destroyed. A load made first (of `files`)
   * leaves the device's shared buffers (uniform pages, the placeholder binding), which later loads reuse.
   */
  async function countingBuffers(gpu: Gpu, files: Map<string, string | Uint8Array>, body: (live: () => number) => Promise<void>): Promise<void> {
    (await loadModel(gpu, memoryFiles('first', files), { contextLength: 32 })).model.destroy();
    const { device } = gpu;
    let live = 0;
    const create = device.createBuffer.bind(device);
    device.createBuffer = (descriptor) => {
      const buffer = create(descriptor);
      live++;
      const destroy = buffer.destroy.bind(buffer);
      let destroyed = false;
      buffer.destroy = () => {
        if (!destroyed) live--;
        destroyed = true;
        destroy();
      };
      return buffer;
    };
    try {
      await body(() => live);
    } finally {
      device.createBuffer = create;
    }
  }

  async function llamaFiles(tensors: Map<string, WeightTensor>, config: object): Promise<Map<string, string | Uint8Array>> {
    return new Map<string, string | Uint8Array>([
      ['config.json', JSON.stringify(config)],
      ['tokenizer.json', (await folderFiles(modelPath('stories260K')).text('tokenizer.json'))!],
      ['model.safetensors', writeSafetensors(checkpointTensors(tensors, 'F32'))],
    ]);
  }

  // q4: the quantizer's staging and status buffers go too.
  for (const dtype of [undefined, 'q4'] as const) {
    it(`an aborted load leaves no GPU buffer behind (${dtype ?? 'checkpoint dtype'})`, async () => {
      const gpu = await testGpu();
      const { config, tensors } = randomModel('llama', SMALL_MODELS.llama, freshSeed());
      const files = await llamaFiles(tensors, config);
      await countingBuffers(gpu, files, async (live) => {
        const controller = new AbortController();
        const reason = new Error('stop halfway');
        let reads = 0;
        const load = loadModel(gpu, memoryFiles('abort', files), {
          dtype,
          contextLength: 32,
          signal: controller.signal,
          sliceBytes: 1,
          onProgress: (p) => p.stage === 'read' && ++reads === 12 && controller.abort(reason),
        });
        await expect(load).rejects.toBe(reason);
        expect(reads).toBe(12);
        expect(live()).toBe(0);
      });
    });
  }

  it('a NaN in a matrix quantized on the GPU fails the load, naming the tensor, and leaves no GPU buffer', async () => {
    const gpu = await testGpu();
    const { config, tensors } = randomModel('llama', SMALL_MODELS.llama, freshSeed());
    const wo = tensors.get('model.layers.1.self_attn.o_proj.weight');
    if (wo?.dtype !== 'f32') throw new Error('expected an f32 o_proj in layer 1');
    const good = await llamaFiles(tensors, config);
    wo.data[77] = NaN;
    await countingBuffers(gpu, good, async (live) => {
      const load = loadModel(gpu, memoryFiles('nan', await llamaFiles(tensors, config)), { dtype: 'q4', contextLength: 32 });
      await expect(load).rejects.toThrow(/layer 1 output projection weight holds a non-finite value/);
      expect(live()).toBe(0);
    });
  });
});
