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
    }
  /**
   * LongRoPE (Phi-3.5, Phi-4-mini): frequency i divided by shortFactor[i] while the sequence is within the
   * pre-trained context, by longFactor[i] past it, and cos/sin multiplied by attentionFactor.
   */
  | {
      type: 'longrope';
      shortFactor: readonly number[];
      longFactor: readonly number[];
      originalMaxPositionEmbeddings: number;
      attentionFactor: number;
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
 * frequencies and blends the band between; `longrope`: divided by the short factors, or the long ones when
 * `long`).
 */
export function ropeInvFreq(o: RopeFrequencyOptions, long = false): Float64Array {
  checkRotaryDim(o.rotaryDim);
  const half = o.rotaryDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = Math.pow(o.theta, (-2 * i) / o.rotaryDim);
  const s = o.scaling;
  if (!s) return inv;
  if (s.type === 'linear') return inv.map((f) => f / s.factor);
  if (s.type === 'longrope') {
    const factors = long ? s.longFactor : s.shortFactor;
    return inv.map((f, i) => f / factors[i]);
  }
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

/**
 * The cos/sin table [maxContext, rotaryDim/2, 2] for positions 0..maxContext−1, computed in f64. LongRoPE
 * rows use the short factors below the pre-trained context and the long ones from it on, times the attention
 * factor: what transformers computes when decoding position p (it picks by the call's last position + 1, so
 * a single prefill that crosses the pre-trained context would rotate its earlier positions with the long
 * factors too).
 */
export function ropeTable(o: RopeFrequencyOptions, maxContext: number): Float32Array {
  const short = ropeInvFreq(o);
  const longrope = o.scaling?.type === 'longrope' ? o.scaling : undefined;
  const long = longrope ? ropeInvFreq(o, true) : short;
  const magnitude = longrope?.attentionFactor ?? 1;
  const half = short.length;
  const table = new Float32Array(maxContext * half * 2);
  for (let p = 0; p < maxContext; p++) {
    const invFreq = longrope && p >= longrope.originalMaxPositionEmbeddings ? long : short;
    for (let i = 0; i < half; i++) {
      const angle = p * invFreq[i];
      table[(p * half + i) * 2] = magnitude * Math.cos(angle);
      table[(p * half + i) * 2 + 1] = magnitude * Math.sin(angle);
    }
  }
  return table;
}
