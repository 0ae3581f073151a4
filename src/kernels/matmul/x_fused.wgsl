// What matmul and matvec may fuse into their activation input (with x_input.wgsl or x_input_vec.wgsl).
// With SWIGLU_X, X is a [M, 2K] gate|up buffer and the kernel reads silu(gate)·up on the fly: fusing
// SwiGLU into the down projection's input saves a dispatch and a round trip of the [M, K] activation.
override SWIGLU_X: bool = false;
// With NORM_X the kernel multiplies by RMSNorm's weight `norm_w[k]` and each row's 1/rms, both computed
// from the X it already reads, so the norm before a projection costs no launch and no round trip of its own.
override NORM_X: bool = false;

// σ(v) from exp(-|v|), which never overflows: large |v| gives exactly 0 or 1, never Inf/Inf = NaN.
fn sigmoid_x(v: f32) -> f32 {
  let e = exp(-abs(v));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}

fn sigmoid_x4(v: vec4<f32>) -> vec4<f32> {
  let e = exp(-abs(v));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= vec4<f32>(0.0));
}

// 1 / sqrt(mean(x²) + eps) of a row, from the sum of its squares.
fn inverse_rms(sum_squares: f32, K: u32) -> f32 {
  return inverseSqrt(sum_squares / f32(K) + params.eps);
}
