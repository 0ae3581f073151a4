/**
 * An independent CPU forward pass (in the spirit of llama2.c's run.c): one function that reads top to
 * bottom, from a ModelSpec and canonical weights widened to f32. It shares no code with the GPU runtime or
 * the per-kernel references, so agreement between them means something. Sums accumulate in f64.
 */
import type { ModelSpec } from './config';
import type { CanonicalWeights, F32Tensor, WeightTensor } from './weights';
import { fromF16 } from '../gpu/f16';

export interface ReferenceModel {
  readonly spec: ModelSpec;
  /**
   * Logits [V] after feeding `tokenId` at position `pos`, keeping its keys and values. Positions 0..pos-1
   * must have been fed already; a smaller `pos` rewinds the cache to it.
   */
  forward(tokenId: number, pos: number): Float32Array<ArrayBuffer>;
  /** The hidden state [D] after the final norm that the last forward() call fed to the LM head (what embedding models pool). */
  lastHidden(): Float32Array;
  /**
   * Feeds the prompt from position 0, then returns `n` tokens, each the argmax (lowest id on ties) of the
   * logits after the previous one. Does not stop at EOS, so the count is always `n`.
   */
  greedy(promptIds: readonly number[], n: number): number[];
}

export function createReferenceModel(spec: ModelSpec, weights: CanonicalWeights): ReferenceModel {
  const { vocabSize: V, hiddenSize: D, intermediateSize: I, numHeads: nH, numKvHeads: nKV, headDim: hd } = spec;
  const qDim = nH * hd;
  const kvDim = nKV * hd;
  const group = nH / nKV;

  const f32 = (t: WeightTensor): Float32Array => (t.dtype === 'f16' ? fromF16(t.data) : t.data);
  // Gemma's RMSNorm multiplies by 1 + w.
  const normWeight = (w: F32Tensor) => (spec.normPlusOne ? w.data.map((v) => 1 + v) : w.data);
  const norm32 = (weight: F32Tensor, bias: F32Tensor | undefined) => ({ weight: normWeight(weight), bias: bias?.data });
  const embedding = f32(weights.embedding);
  const positionEmbedding = weights.positionEmbedding && f32(weights.positionEmbedding);
  const lmHead = weights.lmHead === weights.embedding ? embedding : f32(weights.lmHead);
  const finalNorm = norm32(weights.finalNorm, weights.finalNormBias);
  const layers = weights.layers.map((l) => ({
    attnNorm: norm32(l.attnNorm, l.attnNormBias),
    wqkv: f32(l.wqkv),
    bqkv: l.bqkv?.data,
    qNorm: l.qNorm && normWeight(l.qNorm),
    kNorm: l.kNorm && normWeight(l.kNorm),
    postAttnNorm: l.postAttnNorm && normWeight(l.postAttnNorm),
    postMlpNorm: l.postMlpNorm && normWeight(l.postMlpNorm),
    wo: f32(l.wo),
    bo: l.bo?.data,
    mlpNorm: norm32(l.mlpNorm, l.mlpNormBias),
    wGateUp: l.wGateUp && f32(l.wGateUp),
    bGateUp: l.bGateUp?.data,
    wUp: l.wUp && f32(l.wUp),
    bUp: l.bUp?.data,
    wDown: f32(l.wDown),
    bDown: l.bDown?.data,
  }));
  const invFreq = spec.rope ? ropeInverseFrequencies(spec) : new Float64Array(0);
  // LongRoPE: the long factors from the pre-trained context on, and cos/sin scaled by the attention factor.
  const longrope = spec.rope?.scaling?.type === 'longrope' ? spec.rope.scaling : undefined;
  const longInvFreq = longrope ? ropeInverseFrequencies(spec, true) : invFreq;
  const localInvFreq = spec.localRope ? ropeInverseFrequencies({ ...spec, rope: spec.localRope }) : invFreq;
  const act = spec.activation === 'silu' ? silu : geluTanh;

  // Per layer, per position: the key and value rows [nKV·hd] (grown on demand, so a long context costs
  // nothing until it is used).
  const keyCache: Float32Array[][] = layers.map(() => []);
  const valueCache: Float32Array[][] = layers.map(() => []);

  let finalHidden: Float32Array = new Float32Array(D);

  function forward(tokenId: number, pos: number): Float32Array<ArrayBuffer> {
    if (!Number.isInteger(tokenId) || tokenId < 0 || tokenId >= V) {
      throw new RangeError(`token id ${tokenId} outside [0, ${V})`);
    }
    if (!Number.isInteger(pos) || pos < 0 || pos >= spec.maxContext) {
      throw new RangeError(`position ${pos} outside the context [0, ${spec.maxContext})`);
    }
    if (pos > keyCache[0].length) {
      throw new RangeError(`position ${pos} skips ahead of the ${keyCache[0].length} cached positions`);
    }

    // Token embedding (times Gemma's √hidden), plus the learned position embedding (GPT-2).
    const x = embedding.slice(tokenId * D, (tokenId + 1) * D).map((v) => v * spec.embeddingScale);
    if (positionEmbedding) for (let i = 0; i < D; i++) x[i] += positionEmbedding[pos * D + i];

    for (let l = 0; l < layers.length; l++) {
      const layer = layers[l];

      // Attention: q, k, v from the normalized residual, one fused matrix with rows q, k, v.
      const xn = normalize(x, layer.attnNorm.weight, layer.attnNorm.bias, spec.norm.kind, spec.norm.eps);
      const qkv = matvec(layer.wqkv, xn, qDim + 2 * kvDim, D, layer.bqkv);
      const q = qkv.slice(0, qDim);
      const k = qkv.slice(qDim, qDim + kvDim);
      const v = qkv.slice(qDim + kvDim);

      // Qwen3: RMSNorm over each head of q and k, before rope.
      if (layer.qNorm && layer.kNorm) {
        for (const [vec, heads, weight] of [[q, nH, layer.qNorm], [k, nKV, layer.kNorm]] as const) {
          for (let h = 0; h < heads; h++) {
            const head = vec.subarray(h * hd, (h + 1) * hd);
            head.set(normalize(head, weight, undefined, 'rms', spec.norm.eps));
          }
        }
      }

      // Rotary embedding, rotate-half layout: dims i and i + half of each head turn by pos·invFreq[i]; dims
      // from rotaryDim on (partial rotary) are left as they are. NoPE layers skip it.
      const { window, rope, local } = spec.layerAttention[l];
      if (spec.rope && rope) {
        const half = spec.rope.rotaryDim / 2;
        const frequencies = local ? localInvFreq : longrope && pos >= longrope.originalMaxPositionEmbeddings ? longInvFreq : invFreq;
        const magnitude = longrope?.attentionFactor ?? 1;
        for (let i = 0; i < half; i++) {
          const angle = pos * frequencies[i];
          const cos = magnitude * Math.cos(angle);
          const sin = magnitude * Math.sin(angle);
          for (const [vec, heads] of [[q, nH], [k, nKV]] as const) {
            for (let h = 0; h < heads; h++) {
              const a = vec[h * hd + i];
              const b = vec[h * hd + i + half];
              vec[h * hd + i] = a * cos - b * sin;
              vec[h * hd + i + half] = b * cos + a * sin;
            }
          }
        }
      }

      keyCache[l].length = pos;
      valueCache[l].length = pos;
      keyCache[l].push(k);
      valueCache[l].push(v);

      // Causal attention over positions first..pos (first = 0, or the start of a sliding window); query head h
      // reads kv head floor(h / group) (GQA).
      const first = window > 0 ? Math.max(0, pos - window + 1) : 0;
      const attended = new Float32Array(qDim);
      const scores = new Float64Array(pos + 1);
      for (let h = 0; h < nH; h++) {
        const kvOffset = Math.floor(h / group) * hd;
        let max = -Infinity;
        for (let t = first; t <= pos; t++) {
          const kt = keyCache[l][t];
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += q[h * hd + i] * kt[kvOffset + i];
          scores[t] = dot * spec.attentionScale;
          max = Math.max(max, scores[t]);
        }
        let sum = 0;
        for (let t = first; t <= pos; t++) {
          scores[t] = Math.exp(scores[t] - max);
          sum += scores[t];
        }
        for (let i = 0; i < hd; i++) {
          let acc = 0;
          for (let t = first; t <= pos; t++) acc += scores[t] * valueCache[l][t][kvOffset + i];
          attended[h * hd + i] = acc / sum;
        }
      }
      let attnOut: Float32Array = matvec(layer.wo, attended, D, qDim, layer.bo);
      // Gemma 3: the attention output is normalised before the residual add (so is the MLP's, below).
      if (layer.postAttnNorm) attnOut = normalize(attnOut, layer.postAttnNorm, undefined, 'rms', spec.norm.eps);
      for (let i = 0; i < D; i++) x[i] += attnOut[i];

      // MLP: down(act(gate) * up) when gated (SwiGLU), else down(act(up)) (GPT-2).
      const xm = normalize(x, layer.mlpNorm.weight, layer.mlpNorm.bias, spec.norm.kind, spec.norm.eps);
      const hidden = new Float32Array(I);
      if (layer.wGateUp) {
        const gateUp = matvec(layer.wGateUp, xm, 2 * I, D, layer.bGateUp);
        for (let i = 0; i < I; i++) hidden[i] = act(gateUp[i]) * gateUp[I + i];
      } else if (layer.wUp) {
        const up = matvec(layer.wUp, xm, I, D, layer.bUp);
        for (let i = 0; i < I; i++) hidden[i] = act(up[i]);
      } else {
        throw new Error(`layer ${l} has neither wGateUp nor wUp`);
      }
      let mlpOut: Float32Array = matvec(layer.wDown, hidden, D, I, layer.bDown);
      if (layer.postMlpNorm) mlpOut = normalize(mlpOut, layer.postMlpNorm, undefined, 'rms', spec.norm.eps);
      for (let i = 0; i < D; i++) x[i] += mlpOut[i];
    }

    const xf = normalize(x, finalNorm.weight, finalNorm.bias, spec.norm.kind, spec.norm.eps);
    finalHidden = xf;
    return matvec(lmHead, xf, V, D);
  }

  function greedy(promptIds: readonly number[], n: number): number[] {
    if (promptIds.length === 0) throw new RangeError('greedy needs at least one prompt token');
    let logits: Float32Array = new Float32Array(0);
    for (let pos = 0; pos < promptIds.length; pos++) logits = forward(promptIds[pos], pos);
    const out: number[] = [];
    for (let step = 0; step < n; step++) {
      let best = 0;
      for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
      out.push(best);
      if (step + 1 < n) logits = forward(best, promptIds.length + step);
    }
    return out;
  }

  return { spec, forward, greedy, lastHidden: () => finalHidden.slice() };
}

/** y[rows] = W[rows, cols] · x (+ bias). */
function matvec(
  w: Float32Array,
  x: Float32Array,
  rows: number,
  cols: number,
  bias?: Float32Array,
): Float32Array<ArrayBuffer> {
  const y = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let sum = bias ? bias[r] : 0;
    const base = r * cols;
    for (let c = 0; c < cols; c++) sum += w[base + c] * x[c];
    y[r] = sum;
  }
  return y;
}

/** RMSNorm (x / rms(x) · w) or LayerNorm ((x − mean) / std · w + b, biased variance, as PyTorch). */
function normalize(
  x: Float32Array,
  weight: Float32Array,
  bias: Float32Array | undefined,
  kind: 'rms' | 'layer',
  eps: number,
): Float32Array {
  const n = x.length;
  let mean = 0;
  if (kind === 'layer') {
    for (let i = 0; i < n; i++) mean += x[i];
    mean /= n;
  }
  let squares = 0;
  for (let i = 0; i < n; i++) squares += (x[i] - mean) ** 2;
  const scale = 1 / Math.sqrt(squares / n + eps);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (x[i] - mean) * scale * weight[i] + (bias ? bias[i] : 0);
  return out;
}

function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** GPT-2's gelu_new: the tanh approximation of GELU. */
function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

/**
 * invFreq[i] = theta^(-2i / rotaryDim), then the config's scaling, following Hugging Face's
 * `_compute_linear_scaling_rope_parameters`, `_compute_llama3_parameters` and `_compute_longrope_parameters`
 * (short factors, or the long ones when `long`).
 */
export function ropeInverseFrequencies(spec: ModelSpec, long = false): Float64Array {
  if (!spec.rope) throw new Error(`${spec.arch} has no rotary embedding`);
  const { theta, rotaryDim, scaling } = spec.rope;
  const invFreq = new Float64Array(rotaryDim / 2);
  for (let i = 0; i < invFreq.length; i++) invFreq[i] = 1 / theta ** ((2 * i) / rotaryDim);
  if (scaling?.type === 'linear') {
    for (let i = 0; i < invFreq.length; i++) invFreq[i] /= scaling.factor;
  } else if (scaling?.type === 'longrope') {
    const factors = long ? scaling.longFactor : scaling.shortFactor;
    for (let i = 0; i < invFreq.length; i++) invFreq[i] /= factors[i];
  } else if (scaling?.type === 'llama3') {
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: oldContext } = scaling;
    const lowFreqWavelen = oldContext / lowFreqFactor;
    const highFreqWavelen = oldContext / highFreqFactor;
    for (let i = 0; i < invFreq.length; i++) {
      const wavelen = (2 * Math.PI) / invFreq[i];
      if (wavelen > lowFreqWavelen) {
        // Long wavelengths (low frequencies) are interpolated fully.
        invFreq[i] /= factor;
      } else if (wavelen >= highFreqWavelen) {
        // In between, blend interpolated and original by where the wavelength falls.
        const smooth = (oldContext / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        invFreq[i] = (1 - smooth) * (invFreq[i] / factor) + smooth * invFreq[i];
      }
      // Short wavelengths (high frequencies) are kept.
    }
  }
  return invFreq;
}
