/**
 * CPU reference forward pass of BERT, written from the paper (Devlin et al. 2018, §3) and transformers'
 * BertModel / BertForMaskedLM, not from the GPU code: one input at a time, no padding, every product and sum in
 * f64 with f32 results per operation.
 *
 *   x = LayerNorm(word[id] + position[p] + tokenType[type])
 *   per layer (post-LN):
 *     a = LayerNorm(x + Attention(x)·Woᵀ + bo)        Attention: softmax(q·kᵀ/√hd)·v per head, every position
 *     x = LayerNorm(a + gelu(a·Wiᵀ + bi)·Wo2ᵀ + bo2)
 *   MLM head: logits = LayerNorm(gelu(x·Wtᵀ + bt))·Eᵀ + bias (E: `word` when tied, the default; else the decoder weight)
 */
import { geluErf } from '../../kernels/gelu/reference';
import { EMBEDDING_NAMES, layerNames, MLM_NAMES, type BertConfig, type NormNames } from './config';

/** A checkpoint tensor as f32 by its full name, or undefined when absent. */
export type ReferenceWeights = (name: string) => Float32Array | undefined;

const K = Math.sqrt(2 / Math.PI);
const geluTanh = (v: number) => 0.5 * v * (1 + Math.tanh(K * (v + 0.044715 * v * v * v)));

class Weights {
  constructor(
    private readonly get: ReferenceWeights,
    private readonly prefix: string,
  ) {}

  tensor(name: string, prefixed = true): Float32Array {
    const full = (prefixed ? this.prefix : '') + name;
    const t = this.get(full);
    if (!t) throw new Error(`reference: no tensor ${full}`);
    return t;
  }

  optional(name: string): Float32Array | undefined {
    return this.get(name);
  }

  norm(names: NormNames, prefixed = true): { weight: Float32Array; bias: Float32Array } {
    const find = (options: readonly string[]) => {
      for (const n of options) {
        const t = this.get((prefixed ? this.prefix : '') + n);
        if (t) return t;
      }
      throw new Error(`reference: no tensor ${options.join(' or ')}`);
    };
    return { weight: find(names.weight), bias: find(names.bias) };
  }
}

/** y[rows, N] = x[rows, K]·W[N, K]ᵀ + b. */
function linear(x: Float32Array, rows: number, w: Float32Array, b: Float32Array | undefined, N: number, K: number): Float32Array {
  const y = new Float32Array(rows * N);
  for (let r = 0; r < rows; r++) {
    for (let n = 0; n < N; n++) {
      let s = b ? b[n] : 0;
      for (let k = 0; k < K; k++) s += x[r * K + k] * w[n * K + k];
      y[r * N + n] = s;
    }
  }
  return y;
}

/** LayerNorm of each row of x (+ residual), biased variance as torch computes it. */
function layerNorm(x: Float32Array, rows: number, D: number, p: { weight: Float32Array; bias: Float32Array }, eps: number, residual?: Float32Array): Float32Array {
  const out = new Float32Array(rows * D);
  const v = new Float64Array(D);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let d = 0; d < D; d++) mean += v[d] = x[r * D + d] + (residual ? residual[r * D + d] : 0);
    mean /= D;
    let variance = 0;
    for (let d = 0; d < D; d++) variance += (v[d] - mean) ** 2;
    variance /= D;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let d = 0; d < D; d++) out[r * D + d] = (v[d] - mean) * inv * p.weight[d] + p.bias[d];
  }
  return out;
}

function selfAttention(q: Float32Array, k: Float32Array, v: Float32Array, T: number, heads: number, hd: number): Float32Array {
  const D = heads * hd;
  const out = new Float32Array(T * D);
  const scores = new Float64Array(T);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < T; i++) {
      let max = -Infinity;
      for (let j = 0; j < T; j++) {
        let s = 0;
        for (let d = 0; d < hd; d++) s += q[i * D + h * hd + d] * k[j * D + h * hd + d];
        scores[j] = s / Math.sqrt(hd);
        max = Math.max(max, scores[j]);
      }
      let sum = 0;
      for (let j = 0; j < T; j++) sum += scores[j] = Math.exp(scores[j] - max);
      for (let d = 0; d < hd; d++) {
        let o = 0;
        for (let j = 0; j < T; j++) o += (scores[j] / sum) * v[j * D + h * hd + d];
        out[i * D + h * hd + d] = o;
      }
    }
  }
  return out;
}

export interface BertReference {
  /** Last hidden states [ids.length × hiddenSize]. */
  hidden: Float32Array;
  /** MLM logits [vocabSize] at `positions` (checkpoints with the head only). */
  logits: Float32Array[];
}

export function bertReference(
  config: BertConfig,
  weights: ReferenceWeights,
  prefix: string,
  ids: readonly number[],
  typeIds: readonly number[] = ids.map(() => 0),
  positions: readonly number[] = [],
): BertReference {
  const { hiddenSize: D, intermediateSize: I, heads, headDim, vocabSize: V, layerNormEps: eps } = config;
  const act = config.gelu === 'erf' ? geluErf : geluTanh;
  const w = new Weights(weights, prefix);
  const T = ids.length;

  const word = w.tensor(EMBEDDING_NAMES.word);
  const position = w.tensor(EMBEDDING_NAMES.position);
  const tokenType = w.tensor(EMBEDDING_NAMES.tokenType);
  const sum = new Float32Array(T * D);
  for (let t = 0; t < T; t++) {
    for (let d = 0; d < D; d++) sum[t * D + d] = word[ids[t] * D + d] + position[t * D + d] + tokenType[typeIds[t] * D + d];
  }
  let x = layerNorm(sum, T, D, w.norm(EMBEDDING_NAMES.norm), eps);

  for (let l = 0; l < config.layers; l++) {
    const n = layerNames(l);
    const proj = (name: string, input: Float32Array, N: number, K: number) => linear(input, T, w.tensor(`${name}.weight`), w.tensor(`${name}.bias`), N, K);
    const context = selfAttention(proj(n.query, x, D, D), proj(n.key, x, D, D), proj(n.value, x, D, D), T, heads, headDim);
    const a = layerNorm(proj(n.attentionOutput, context, D, D), T, D, w.norm(n.attentionNorm), eps, x);
    const inner = proj(n.intermediate, a, I, D).map(act);
    x = layerNorm(proj(n.output, inner, D, I), T, D, w.norm(n.outputNorm), eps, a);
  }

  const logits: Float32Array[] = [];
  if (positions.length > 0) {
    const decoder = config.tiedDecoder ? word : w.tensor(MLM_NAMES.decoder, false);
    const transformW = w.tensor(`${MLM_NAMES.transform}.weight`, false);
    const transformB = w.tensor(`${MLM_NAMES.transform}.bias`, false);
    const bias = w.optional(MLM_NAMES.bias[0]) ?? w.tensor(MLM_NAMES.bias[1], false);
    for (const p of positions) {
      const t = linear(x.subarray(p * D, (p + 1) * D), 1, transformW, transformB, D, D).map(act);
      logits.push(linear(layerNorm(t, 1, D, w.norm(MLM_NAMES.transformNorm, false), eps), 1, decoder, bias, V, D));
    }
  }
  return { hidden: x, logits };
}
