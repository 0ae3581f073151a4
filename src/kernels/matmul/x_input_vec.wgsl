// Activation-input prelude, four elements at a time (x: array<vec4<f32>>, K a multiple of 4):
// `load_x4(m, v, K4)` reads X[m, 4v..4v+3] with K4 = K / 4, or silu(gate)·up with SWIGLU_X (x_fused.wgsl).
fn load_x4(m: u32, v: u32, K4: u32) -> vec4<f32> {
  if (SWIGLU_X) {
    let gate = x[m * 2u * K4 + v];
    return gate * sigmoid_x4(gate) * x[m * 2u * K4 + K4 + v];
  }
  return x[m * K4 + v];
}
