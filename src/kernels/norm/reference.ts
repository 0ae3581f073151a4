/** CPU reference for RMSNorm and LayerNorm over rows of x[rows, D]. Accumulates in f64. */
export function normRef(
  x: Float32Array,
  weight: Float32Array,
  rows: number,
  D: number,
  kind: 'rms' | 'layer',
  eps: number,
  bias?: Float32Array,
): Float32Array {
  const out = new Float32Array(rows * D);
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * D, (r + 1) * D);
    let mean = 0;
    if (kind === 'layer') {
      for (const v of row) mean += v;
      mean /= D;
    }
    // RMSNorm: mean of squares; LayerNorm: biased variance (divides by D, like PyTorch).
    let ss = 0;
    for (const v of row) ss += (v - mean) * (v - mean);
    const scale = 1 / Math.sqrt(ss / D + eps);
    for (let i = 0; i < D; i++) {
      out[r * D + i] = (row[i] - mean) * scale * weight[i] + (bias ? bias[i] : 0);
    }
  }
  return out;
}
