// Activation-input prelude for matmul and matvec: `load_x(m, k, K)` reads X[m, k] as stored, or, with
// SWIGLU_X, computes silu(gate)·up from a [M, 2K] gate|up buffer on the fly. Fusing SwiGLU into the down
// projection's input saves a dispatch and a round trip of the [M, K] activation through memory per layer.
override SWIGLU_X: bool = false;
// With NORM_X the kernel multiplies by RMSNorm's weight `norm_w[k]` and each row's 1/rms, both computed
// from the X it already reads, so the norm before a projection costs no launch and no round trip of its own.
override NORM_X: bool = false;

// σ(v) from exp(-|v|), which never overflows: large |v| gives exactly 0 or 1, never Inf/Inf = NaN.
fn sigmoid_x(v: f32) -> f32 {
  let e = exp(-abs(v));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}

fn load_x(m: u32, k: u32, K: u32) -> f32 {
  if (SWIGLU_X) {
    let gate = x[m * 2u * K + k];
    return gate * sigmoid_x(gate) * x[m * 2u * K + K + k];
  }
  return x[m * K + k];
}

// 1 / sqrt(mean(x²) + eps) of a row, from the sum of its squares.
fn inverse_rms(sum_squares: f32, K: u32) -> f32 {
  return inverseSqrt(sum_squares / f32(K) + params.eps);
}
