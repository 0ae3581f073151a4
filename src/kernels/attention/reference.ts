/**
 * CPU reference for causal grouped-query attention, in f64 with the plain two-pass softmax (all scores,
 * their maximum, then the normalised weights), so it shares no structure with the kernel's online softmax.
 * Layouts as in attention.ts; returns [T, nHeads, headDim].
 */
export interface AttentionRefShape {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  maxContext: number;
  T: number;
  pos: number;
  scale: number;
  /** Sliding window (0 = none): row t sees positions max(0, pos+t−window+1)..pos+t. */
  window?: number;
}

export function attentionRef(q: Float32Array, kCache: Float32Array, vCache: Float32Array, s: AttentionRefShape): Float32Array {
  const { nHeads, nKvHeads, headDim: D, maxContext, T, pos, scale } = s;
  const window = s.window ?? 0;
  const group = nHeads / nKvHeads;
  const out = new Float32Array(T * nHeads * D);
  const scores = new Float64Array(pos + T);
  const o = new Float64Array(D);
  for (let t = 0; t < T; t++) {
    const ctx = pos + t + 1;
    const first = window > 0 ? Math.max(0, ctx - window) : 0;
    for (let h = 0; h < nHeads; h++) {
      const qRow = (t * nHeads + h) * D;
      const kv = Math.floor(h / group) * maxContext;
      let max = -Infinity;
      for (let p = first; p < ctx; p++) {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[qRow + d] * kCache[(kv + p) * D + d];
        scores[p] = dot * scale;
        max = Math.max(max, scores[p]);
      }
      let sum = 0;
      for (let p = first; p < ctx; p++) sum += scores[p] = Math.exp(scores[p] - max);
      o.fill(0);
      for (let p = first; p < ctx; p++) {
        const w = scores[p] / sum;
        for (let d = 0; d < D; d++) o[d] += w * vCache[(kv + p) * D + d];
      }
      out.set(o, qRow);
    }
  }
  return out;
}
