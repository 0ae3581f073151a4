/**
 * CPU reference for bidirectional attention over packed sequences, in f64 with the plain two-pass softmax (all
 * scores, their maximum, then the normalised weights), sharing no structure with the kernel's online softmax.
 * Layouts as in encoder_attention.ts; returns [sum of lengths, nHeads·headDim].
 */
export function encoderAttentionRef(qkv: Float32Array, lengths: readonly number[], nHeads: number, headDim: number, scale: number): Float32Array {
  const width = nHeads * headDim;
  const stride = 3 * width;
  const total = lengths.reduce((a, b) => a + b, 0);
  const out = new Float32Array(total * width);
  const o = new Float64Array(headDim);
  let start = 0;
  for (const length of lengths) {
    const scores = new Float64Array(length);
    for (let t = start; t < start + length; t++) {
      for (let h = 0; h < nHeads; h++) {
        const q = t * stride + h * headDim;
        let max = -Infinity;
        for (let j = 0; j < length; j++) {
          const k = (start + j) * stride + width + h * headDim;
          let dot = 0;
          for (let d = 0; d < headDim; d++) dot += qkv[q + d] * qkv[k + d];
          scores[j] = dot * scale;
          max = Math.max(max, scores[j]);
        }
        let sum = 0;
        for (let j = 0; j < length; j++) sum += scores[j] = Math.exp(scores[j] - max);
        o.fill(0);
        for (let j = 0; j < length; j++) {
          const v = (start + j) * stride + 2 * width + h * headDim;
          for (let d = 0; d < headDim; d++) o[d] += (scores[j] / sum) * qkv[v + d];
        }
        out.set(o, t * width + h * headDim);
      }
    }
    start += length;
  }
  return out;
}
