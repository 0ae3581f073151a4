// Activation-input prelude for matmul and matvec: `load_x(m, k, K)` reads X[m, k] as stored, or, with
// SWIGLU_X, computes silu(gate)·up from a [M, 2K] gate|up buffer on the fly. Fusing SwiGLU into the down
// projection's input saves a dispatch and a round trip of the [M, K] activation through memory per layer.
override SWIGLU_X: bool = false;

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
