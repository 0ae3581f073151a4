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
