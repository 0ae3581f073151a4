// Activation-input prelude, one element at a time (x: array<f32>): `load_x(m, k, K)` reads X[m, k] as
// stored, or silu(gate)·up with SWIGLU_X (x_fused.wgsl).
fn load_x(m: u32, k: u32, K: u32) -> f32 {
  if (SWIGLU_X) {
    let gate = x[m * 2u * K + k];
    return gate * sigmoid_x(gate) * x[m * 2u * K + K + k];
  }
  return x[m * K + k];
}
