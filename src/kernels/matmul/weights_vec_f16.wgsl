// Vector weight prelude, native f16 (device feature shader-f16): a step is 8 weights, two vec4<f16>.
enable f16;
alias WVec = vec4<f16>;
const W_STEP: u32 = 8u;
const W_OFFSET: f32 = 0.0;

fn load_w_step(g: u32) -> array<vec4<f32>, 2> {
  return array<vec4<f32>, 2>(vec4<f32>(w[2u * g]), vec4<f32>(w[2u * g + 1u]));
}

// Σ w·x over step g (flat elements 8g..8g+7).
fn dot_w_step(g: u32, xs: array<vec4<f32>, 2>, x_sum: f32) -> f32 {
  return dot(vec4<f32>(w[2u * g]), xs[0]) + dot(vec4<f32>(w[2u * g + 1u]), xs[1]);
}
