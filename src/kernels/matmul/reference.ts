/** CPU reference for matmul: Y[M,N] = X[M,K] · W[N,K]ᵀ (+ bias) (+ Y0). Accumulates in f64. */
export function matmulRef(
  x: Float32Array,
  w: Float32Array,
  M: number,
  N: number,
  K: number,
  bias?: Float32Array,
  residual?: Float32Array,
): Float32Array {
  const y = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let sum = 0;
      for (let k = 0; k < K; k++) sum += x[m * K + k] * w[n * K + k];
      if (bias) sum += bias[n];
      if (residual) sum += residual[m * N + n];
      y[m * N + n] = sum;
    }
  }
  return y;
}

function siluRef(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** SwiGLU: out[r, i] = silu(gate) · up, each row of gateUp being [gate (I values), up (I values)]. */
export function siluMulRef(gateUp: Float32Array, rows: number, I: number): Float32Array {
  const out = new Float32Array(rows * I);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < I; i++) out[r * I + i] = siluRef(gateUp[r * 2 * I + i]) * gateUp[r * 2 * I + I + i];
  }
  return out;
}
