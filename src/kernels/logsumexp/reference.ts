/** CPU reference for the logsumexp kernel, in f64. */

/** log Σ exp over each row's values above -Infinity; -Infinity for a row with none. */
export function logSumExpRef(logits: Float32Array, rows: number, V: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const row = logits.subarray(r * V, (r + 1) * V);
    let max = -Infinity;
    for (const v of row) if (v > max) max = v;
    if (max === -Infinity) {
      out[r] = -Infinity;
      continue;
    }
    let sum = 0;
    for (const v of row) if (v > -Infinity) sum += Math.exp(v - max);
    out[r] = max + Math.log(sum);
  }
  return out;
}
