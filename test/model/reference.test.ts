import { describe, expect, it } from 'vitest';
import { openSafetensors } from '../../src/formats/safetensors';
import { writeSafetensors } from '../../src/dev/safetensors-writer';
import { bytesSource } from '../../src/formats/sources';
import { fromF16 } from '../../src/gpu/f16';
import { parseModelConfig, type Arch, type ModelSpec } from '../../src/model/config';
import { randomModel, randomModelConfig, SMALL_MODELS } from '../../src/dev/random-model';
import {
  loadCanonicalWeights,
  ModelWeightsError,
  safetensorsWeightReader,
  tensorMapReader,
  weightBytes,
  type CanonicalWeights,
  type WeightDtype,
  type WeightTensor,
} from '../../src/model/weights';
import { createReferenceModel, ropeInverseFrequencies } from '../../src/model/reference';
import { freshSeed } from '../../src/util/random';
import { readModelBytes, readModelText } from '../models';

async function loadStories(dir: string, dtype?: WeightDtype) {
  const spec = parseModelConfig(JSON.parse(readModelText(dir, 'config.json')));
  const file = await openSafetensors(bytesSource(readModelBytes(dir, 'model.safetensors'), dir));
  const weights = await loadCanonicalWeights(spec, safetensorsWeightReader(file), { dtype });
  return { spec, weights };
}

function loadRandom(arch: Arch, seed: number, dtype?: WeightDtype) {
  const model = randomModel(arch, { ...SMALL_MODELS[arch], dtype }, seed);
  const spec = parseModelConfig(model.config);
  return { model, spec, load: (tensors = model.tensors) => loadCanonicalWeights(spec, tensorMapReader(tensors)) };
}

/** Every distinct tensor of canonical weights (a tied LM head once). */
function allTensors(w: CanonicalWeights): WeightTensor[] {
  const out = new Set<WeightTensor>([w.embedding, w.lmHead, w.finalNorm]);
  if (w.positionEmbedding) out.add(w.positionEmbedding);
  if (w.finalNormBias) out.add(w.finalNormBias);
  // Every tensor a layer has, so a new one in the table (Gemma's post-norms) is counted without a change here.
  for (const l of w.layers) for (const t of Object.values(l)) if (t) out.add(t);
  return [...out];
}

describe('reference forward pass on stories260K', () => {
  const golden = JSON.parse(readModelText('stories260K', 'greedy-golden.json')) as {
    prompt_ids: number[];
    new_tokens: number;
    greedy_ids: number[];
  };

  for (const [dir, dtype] of [
    ['stories260K', undefined],
    ['stories260K-f16', undefined],
    ['stories260K', 'f16'],
  ] as const) {
    it(`reproduces the greedy golden exactly: ${dir} weights${dtype ? `, loaded as ${dtype}` : ''}`, async () => {
      const { spec, weights } = await loadStories(dir, dtype);
      expect(weights.layers[0].wqkv.dtype).toBe(dir.endsWith('f16') || dtype === 'f16' ? 'f16' : 'f32');
      expect(weights.lmHead).toBe(weights.embedding);
      const model = createReferenceModel(spec, weights);
      expect(model.greedy(golden.prompt_ids, golden.new_tokens)).toEqual(golden.greedy_ids);
    });
  }

  it('rewinding the KV cache gives the same logits as a fresh run', async () => {
    const { spec, weights } = await loadStories('stories260K');
    const a = createReferenceModel(spec, weights);
    const b = createReferenceModel(spec, weights);
    for (const [pos, id] of [1, 403, 407, 261].entries()) a.forward(id, pos);
    // Rewind to position 2 with a different token.
    const rewound = a.forward(99, 2);
    for (const [pos, id] of [1, 403].entries()) b.forward(id, pos);
    expect(rewound).toEqual(b.forward(99, 2));
    expect(() => a.forward(1, 4)).toThrow(RangeError);
    expect(() => a.forward(512, 3)).toThrow(RangeError);
  });
});

describe('canonical weight mapping', () => {
  it('gpt2: Conv1D weights are transposed and c_attn splits into q, k, v rows', async () => {
    const seed = freshSeed();
    const { model, spec, load } = loadRandom('gpt2', seed);
    const D = spec.hiddenSize;
    const I = spec.intermediateSize;
    const hf = (name: string) => model.tensors.get(name)!.data;
    for (const tensors of [model.tensors, new Map([...model.tensors].map(([k, v]) => [`transformer.${k}`, v]))]) {
      const w = await load(tensors);
      expect(w.embedding.data).toBe(hf('wte.weight'));
      expect(w.lmHead).toBe(w.embedding);
      expect(w.positionEmbedding?.data).toBe(hf('wpe.weight'));
      expect(w.finalNormBias?.data).toEqual(hf('ln_f.bias'));
      for (let l = 0; l < spec.numLayers; l++) {
        const layer = w.layers[l];
        const cAttn = hf(`h.${l}.attn.c_attn.weight`);
        expect(layer.wqkv.shape).toEqual([3 * D, D]);
        // Row r of q, k, v is column r, D + r, 2D + r of the [D, 3D] Conv1D weight.
        for (const [part, offset] of [['q', 0], ['k', D], ['v', 2 * D]] as const) {
          for (let r = 0; r < D; r++) {
            for (let c = 0; c < D; c++) {
              const got = layer.wqkv.data[(offset + r) * D + c];
              if (got !== cAttn[c * 3 * D + offset + r]) {
                throw new Error(`seed ${seed}: layer ${l} ${part}[${r}, ${c}] is not c_attn[${c}, ${offset + r}]`);
              }
            }
          }
        }
        expect(layer.bqkv?.data).toEqual(hf(`h.${l}.attn.c_attn.bias`));
        const cProj = hf(`h.${l}.attn.c_proj.weight`);
        const cFc = hf(`h.${l}.mlp.c_fc.weight`);
        const down = hf(`h.${l}.mlp.c_proj.weight`);
        expect(layer.wUp?.shape).toEqual([I, D]);
        expect(layer.wDown.shape).toEqual([D, I]);
        // Sampled [out, in] entries against the [in, out] originals.
        for (let i = 0; i < 50; i++) {
          const d = (i * 7) % D;
          const e = (i * 11) % D;
          const j = (i * 13) % I;
          expect(layer.wo.data[d * D + e]).toBe(cProj[e * D + d]);
          expect(layer.wUp?.data[j * D + d]).toBe(cFc[d * I + j]);
          expect(layer.wDown.data[d * I + j]).toBe(down[j * D + d]);
        }
        expect(layer.wGateUp).toBeUndefined();
        expect([layer.attnNormBias, layer.mlpNormBias, layer.bo, layer.bUp, layer.bDown].every(Boolean)).toBe(true);
      }
    }
  });

  it('llama, qwen2, qwen3: q/k/v and gate/up fused by rows, biases and qk-norm where the arch has them', async () => {
    for (const arch of ['llama', 'qwen2', 'qwen3'] as const) {
      const { model, spec, load } = loadRandom(arch, freshSeed());
      const w = await load();
      const hf = (name: string) => model.tensors.get(name)!.data;
      const { hiddenSize: D, intermediateSize: I, numHeads: nH, numKvHeads: nKV, headDim: hd } = spec;
      for (let l = 0; l < spec.numLayers; l++) {
        const p = `model.layers.${l}.`;
        const layer = w.layers[l];
        expect(layer.wqkv.shape).toEqual([(nH + 2 * nKV) * hd, D]);
        const q = hf(`${p}self_attn.q_proj.weight`);
        const k = hf(`${p}self_attn.k_proj.weight`);
        const v = hf(`${p}self_attn.v_proj.weight`);
        expect(layer.wqkv.data.subarray(0, q.length)).toEqual(q);
        expect(layer.wqkv.data.subarray(q.length, q.length + k.length)).toEqual(k);
        expect(layer.wqkv.data.subarray(q.length + k.length)).toEqual(v);
        expect(layer.wGateUp?.shape).toEqual([2 * I, D]);
        expect(layer.wGateUp?.data.subarray(0, I * D)).toEqual(hf(`${p}mlp.gate_proj.weight`));
        expect(layer.wGateUp?.data.subarray(I * D)).toEqual(hf(`${p}mlp.up_proj.weight`));
        expect(layer.wo.data).toBe(hf(`${p}self_attn.o_proj.weight`));
        if (arch === 'qwen2') {
          const bias = ['q', 'k', 'v'].flatMap((x) => [...hf(`${p}self_attn.${x}_proj.bias`)]);
          expect([...(layer.bqkv?.data ?? [])]).toEqual(bias);
        } else {
          expect(layer.bqkv).toBeUndefined();
        }
        expect(layer.qNorm?.data).toEqual(arch === 'qwen3' ? hf(`${p}self_attn.q_norm.weight`) : undefined);
        expect(layer.kNorm?.data).toEqual(arch === 'qwen3' ? hf(`${p}self_attn.k_norm.weight`) : undefined);
        expect(layer.bo).toBeUndefined();
      }
      if (spec.tiedEmbeddings) expect(w.lmHead).toBe(w.embedding);
      else expect(w.lmHead.data).toBe(hf('lm_head.weight'));
    }
  });

  it('phi3: the fused qkv_proj and gate_up_proj already are wqkv and wGateUp', async () => {
    const { model, spec, load } = loadRandom('phi3', freshSeed());
    const w = await load();
    const hf = (name: string) => model.tensors.get(name)!.data;
    const { hiddenSize: D, intermediateSize: I, numHeads: nH, numKvHeads: nKV, headDim: hd } = spec;
    for (let l = 0; l < spec.numLayers; l++) {
      const p = `model.layers.${l}.`;
      const layer = w.layers[l];
      expect(layer.wqkv.shape).toEqual([(nH + 2 * nKV) * hd, D]);
      expect(layer.wqkv.data).toBe(hf(`${p}self_attn.qkv_proj.weight`));
      expect(layer.wGateUp?.shape).toEqual([2 * I, D]);
      expect(layer.wGateUp?.data).toBe(hf(`${p}mlp.gate_up_proj.weight`));
      expect([layer.bqkv, layer.bo, layer.bGateUp, layer.bDown, layer.qNorm]).toEqual([undefined, undefined, undefined, undefined, undefined]);
    }
    expect(w.lmHead.data).toBe(hf('lm_head.weight'));
  });

  it('keeps f16 matrices as f16 bits and makes norms and biases f32; converts matrices on request', async () => {
    const { model, spec, load } = loadRandom('qwen2', freshSeed(), 'f16');
    const w = await load();
    expect(w.layers[0].wqkv.dtype).toBe('f16');
    expect(w.layers[0].bqkv?.dtype).toBe('f32');
    const qBias = model.tensors.get('model.layers.0.self_attn.q_proj.bias')!;
    expect(w.layers[0].bqkv?.data.subarray(0, qBias.data.length)).toEqual(fromF16(qBias.data));
    expect(w.finalNorm.dtype).toBe('f32');
    const f32 = await loadCanonicalWeights(spec, tensorMapReader(model.tensors), { dtype: 'f32' });
    expect(allTensors(f32).every((t) => t.dtype === 'f32')).toBe(true);
    expect(f32.layers[1].wDown.data).toEqual(fromF16(w.layers[1].wDown.data as Uint16Array));
  });

  it('weightBytes matches the loaded weights for every arch and dtype', async () => {
    for (const arch of Object.keys(SMALL_MODELS) as Arch[]) {
      for (const dtype of ['f32', 'f16'] as const) {
        const { spec, load } = loadRandom(arch, 1, dtype);
        const loaded = allTensors(await load()).reduce((n, t) => n + t.data.byteLength, 0);
        expect(weightBytes(spec, dtype), `${arch} ${dtype}`).toBe(loaded);
      }
    }
  });

  it('refuses a missing tensor or a wrong shape, naming the tensor and both shapes', async () => {
    const { model, spec, load } = loadRandom('llama', 5);
    const missing = new Map(model.tensors);
    missing.delete('model.layers.1.mlp.up_proj.weight');
    const e1 = await load(missing).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(ModelWeightsError);
    expect((e1 as ModelWeightsError).tensor).toBe('model.layers.1.mlp.up_proj.weight');
    expect((e1 as ModelWeightsError).message).toContain(`[${spec.intermediateSize}, ${spec.hiddenSize}]`);

    const bad = new Map(model.tensors);
    const kvRows = spec.numKvHeads * spec.headDim;
    const D = spec.hiddenSize;
    const name = 'model.layers.0.self_attn.k_proj.weight';
    bad.set(name, { dtype: 'f32', shape: [kvRows + 1, D], data: new Float32Array((kvRows + 1) * D) });
    const e2 = await load(bad).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(ModelWeightsError);
    expect(e2).toMatchObject({ tensor: name, expected: [kvRows, D], actual: [kvRows + 1, D] });
    expect((e2 as Error).message).toContain(`expected shape [${kvRows}, ${D}], got [${kvRows + 1}, ${D}]`);

    // A shape that fits but data that does not.
    bad.set(name, { dtype: 'f32', shape: [kvRows, D], data: new Float32Array(kvRows * D - 1) });
    await expect(load(bad)).rejects.toThrow(ModelWeightsError);

    const untied = new Map(model.tensors);
    untied.delete('lm_head.weight');
    await expect(load(untied)).rejects.toThrow(/lm_head\.weight/);

    const gpt2 = loadRandom('gpt2', 5);
    const noWte = new Map(gpt2.model.tensors);
    noWte.delete('wte.weight');
    await expect(gpt2.load(noWte)).rejects.toThrow(/wte\.weight.*transformer\.wte\.weight/);
  });

  it('a random model survives a safetensors round trip unchanged', async () => {
    const { model, spec, load } = loadRandom('qwen3', freshSeed(), 'f16');
    const toWrite = [...model.tensors].map(([name, t]) => ({ name, ...t, dtype: t.dtype === 'f16' ? 'F16' : 'F32' }) as const);
    const bytes = writeSafetensors(toWrite);
    const read: string[] = [];
    const file = await openSafetensors(bytesSource(bytes));
    const fromFile = await loadCanonicalWeights(spec, safetensorsWeightReader(file, (info) => read.push(info.name)));
    expect(fromFile).toEqual(await load());
    expect(read.sort()).toEqual([...model.tensors.keys()].sort());
  });
});

describe('reference forward pass on random models', () => {
  it('llama3 rope scaling keeps short wavelengths, divides long ones by the factor, and blends continuously', () => {
    const spec = parseModelConfig(randomModelConfig('llama', SMALL_MODELS.llama));
    const plain = ropeInverseFrequencies({ ...spec, rope: spec.rope && { ...spec.rope, scaling: null } });
    const scaled = ropeInverseFrequencies(spec);
    // head_dim 16, theta 1e4, original context 32: wavelengths 2π·10^(i/2); high-freq cutoff 8, low 32.
    expect(scaled[0]).toBe(plain[0]);
    for (let i = 2; i < 8; i++) expect(scaled[i]).toBeCloseTo(plain[i] / 8, 15);
    const smooth = (32 / ((2 * Math.PI) / plain[1]) - 1) / 3;
    expect(scaled[1]).toBeCloseTo((1 - smooth) * (plain[1] / 8) + smooth * plain[1], 15);
    // Continuity at both cutoffs, probed by moving theta so one wavelength sits exactly on each.
    for (const [wavelen, expected] of [[8, 1], [32, 1 / 8]]) {
      const theta = (wavelen / (2 * Math.PI)) ** (16 / 2);
      const s = { ...spec, rope: spec.rope && { ...spec.rope, theta } };
      expect(ropeInverseFrequencies(s)[1] / ((2 * Math.PI) / wavelen)).toBeCloseTo(expected, 12);
    }
  });

  for (const arch of Object.keys(SMALL_MODELS) as Arch[]) {
    it(`${arch}: finite logits, deterministic greedy, f16 weights close to f32`, async () => {
      const seed = freshSeed();
      const { model: model32, spec, load } = loadRandom(arch, seed);
      const weights = await load();
      const model = createReferenceModel(spec, weights);
      const prompt = [3, 17, 5, 250, 9];
      const ids = model.greedy(prompt, 12);
      expect(ids, `seed ${seed}`).toEqual(createReferenceModel(spec, weights).greedy(prompt, 12));
      const logits = model.forward(ids[0], prompt.length);
      expect(logits.every(Number.isFinite)).toBe(true);
      expectSpread(logits, spec, seed);

      const halfWeights = await loadCanonicalWeights(spec, tensorMapReader(model32.tensors), { dtype: 'f16' });
      const half = createReferenceModel(spec, halfWeights);
      half.greedy(prompt, 1);
      const halfLogits = half.forward(ids[0], prompt.length);
      let maxDiff = 0;
      for (let i = 0; i < logits.length; i++) maxDiff = Math.max(maxDiff, Math.abs(logits[i] - halfLogits[i]));
      expect(maxDiff, `seed ${seed}`).toBeLessThan(0.05);
    });
  }
});

/** Logits neither flat nor exploding: the random scales are meant to keep activations O(1). */
function expectSpread(logits: Float32Array, spec: ModelSpec, seed: number): void {
  let sum = 0;
  let squares = 0;
  for (const v of logits) {
    sum += v;
    squares += v * v;
  }
  const std = Math.sqrt(squares / spec.vocabSize - (sum / spec.vocabSize) ** 2);
  expect(std, `logit spread for ${spec.arch}, seed ${seed}`).toBeGreaterThan(0.5);
  expect(std, `logit spread for ${spec.arch}, seed ${seed}`).toBeLessThan(20);
}
