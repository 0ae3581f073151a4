/** CPU reference for the gelu kernel. Arithmetic in f64, results rounded to f32. */

/** GELU, tanh approximation (GPT-2's gelu_new). */
export function geluRef(x: Float32Array): Float32Array {
  const k = Math.sqrt(2 / Math.PI);
  return x.map((v) => 0.5 * v * (1 + Math.tanh(k * (v + 0.044715 * v * v * v))));
}
