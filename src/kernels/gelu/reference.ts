/** CPU reference for the gelu kernel. Arithmetic in f64, results rounded to f32. */

const K = Math.sqrt(2 / Math.PI);
const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(K * (v + 0.044715 * v * v * v)));

/** GELU, tanh approximation (GPT-2's gelu_new). */
export function geluRef(x: Float32Array): Float32Array {
  return x.map(gelu);
}

/** GeGLU: rows of x are [gate | up], each D wide; out[r, i] = gelu(gate[r, i])·up[r, i]. */
export function gatedGeluRef(x: Float32Array, rows: number, D: number): Float32Array {
  const out = new Float32Array(rows * D);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < D; i++) out[r * D + i] = gelu(x[r * 2 * D + i]) * x[r * 2 * D + D + i];
  }
  return out;
}
