/**
 * The rotary embedding's frequencies and its cos/sin table, computed on the CPU in f64 once at load (the
 * rope kernel reads the table), with Hugging Face transformers' rope scaling.
 */
import { checkRotaryDim } from '../kernels/rope/rope';

export type RopeScaling =
  /** Position interpolation: every inverse frequency divided by `factor`. */
  | { type: 'linear'; factor: number }
  /** Llama 3.1+: long wavelengths divided by `factor`, short kept, a smooth blend between. */
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      /** Context length the model was pre-trained with, before the extension. */
      originalMaxPositionEmbeddings: number;
    };

export interface RopeFrequencyOptions {
  rotaryDim: number;
  /** Base θ (`rope_theta`). */
  theta: number;
  scaling?: RopeScaling;
}

/**
 * Inverse frequencies invFreq[i] = θ^(−2i/rotaryDim), i < rotaryDim/2, with HF transformers' rope scaling
 * (`linear`: divided by the factor; `llama3`: `_compute_llama3_parameters`, which scales only the low
 * frequencies and blends the band between).
 */
export function ropeInvFreq(o: RopeFrequencyOptions): Float64Array {
  checkRotaryDim(o.rotaryDim);
  const half = o.rotaryDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = Math.pow(o.theta, (-2 * i) / o.rotaryDim);
  const s = o.scaling;
  if (!s) return inv;
  if (s.type === 'linear') return inv.map((f) => f / s.factor);
  const lowFreqWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highFreqWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen > lowFreqWavelen) return f / s.factor;
    if (wavelen < highFreqWavelen) return f;
    const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return ((1 - smooth) * f) / s.factor + smooth * f;
  });
}

/** The cos/sin table [maxContext, invFreq.length, 2] for positions 0..maxContext−1, computed in f64. */
export function ropeTable(invFreq: ArrayLike<number>, maxContext: number): Float32Array {
  const half = invFreq.length;
  const table = new Float32Array(maxContext * half * 2);
  for (let p = 0; p < maxContext; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * invFreq[i];
      table[(p * half + i) * 2] = Math.cos(angle);
      table[(p * half + i) * 2 + 1] = Math.sin(angle);
    }
  }
  return table;
}
