// Vector weight prelude, native f16 (device feature shader-f16): a step is 8 weights, one vec4<u32> load
// seen as two vec4<f16> (one 16-byte load per step rather than two 8-byte ones: loads are what costs).
enable f16;
alias WVec = vec4<u32>;
const W_STEP: u32 = 8u;
const W_OFFSET: f32 = 0.0;

fn load_w_step(g: u32) -> array<vec4<f32>, 2> {
  let q = w[g];
  return array<vec4<f32>, 2>(vec4<f32>(bitcast<vec4<f16>>(q.xy)), vec4<f32>(bitcast<vec4<f16>>(q.zw)));
}

// Σ w·x over step g (flat elements 8g..8g+7).
fn dot_w_step(g: u32, xs: array<vec4<f32>, 2>, x_sum: f32) -> f32 {
  let v = load_w_step(g);
  return dot(v[0], xs[0]) + dot(v[1], xs[1]);
}

// The weights of step g and their scale (none: the values are the weights), as the quantized preludes give them.
fn w_step_values(g: u32) -> array<vec4<f32>, 2> { return load_w_step(g); }

fn w_step_scale(g: u32) -> f32 { return 1.0; }
