/** CPU reference for the gelu kernel. Arithmetic in f64, results rounded to f32. */

const K = Math.sqrt(2 / Math.PI);
const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(K * (v + 0.044715 * v * v * v)));

/**
 * erf in f64 to ~1e-15: its Maclaurin series below |z| = 3, and above it erfc's continued fraction
 * erfc(z) = exp(−z²)/√π · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + …)))), evaluated from a depth where it has converged.
 */
export function erf(z: number): number {
  const a = Math.abs(z);
  if (a < 3) {
    let term = z;
    let sum = z;
    for (let n = 1; n < 100 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-z * z) / n;
      sum += term / (2 * n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  let fraction = a;
  for (let k = 60; k >= 1; k--) fraction = a + k / 2 / fraction;
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / fraction;
  return Math.sign(z) * (1 - erfc);
}

/** GELU, exact: x·Φ(x) = 0.5·x·(1 + erf(x/√2)) (BERT's `gelu`, PyTorch's default). */
export const geluErf = (v: number): number => 0.5 * v * (1 + erf(v / Math.SQRT2));

/** GELU element-wise: the tanh approximation (GPT-2's gelu_new), or the exact erf form. */
export function geluRef(x: Float32Array, form: 'tanh' | 'erf' = 'tanh'): Float32Array {
  return x.map(form === 'erf' ? geluErf : gelu);
}

/** GeGLU: rows of x are [gate | up], each D wide; out[r, i] = gelu(gate[r, i])·up[r, i], gelu in either form. */
export function gatedGeluRef(x: Float32Array, rows: number, D: number, form: 'tanh' | 'erf' = 'tanh'): Float32Array {
  const act = form === 'erf' ? geluErf : gelu;
  const out = new Float32Array(rows * D);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < D; i++) out[r * D + i] = act(x[r * 2 * D + i]) * x[r * 2 * D + D + i];
  }
  return out;
}
