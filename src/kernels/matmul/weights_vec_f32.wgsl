// Vector weight prelude, f32: a step is 4 weights, one vec4<f32>.
alias WVec = vec4<f32>;
const W_STEP: u32 = 4u;
const W_OFFSET: f32 = 0.0;

fn load_w_step(g: u32) -> array<vec4<f32>, 1> {
  return array<vec4<f32>, 1>(w[g]);
}

// Σ w·x over step g (flat elements 4g..4g+3).
fn dot_w_step(g: u32, xs: array<vec4<f32>, 1>, x_sum: f32) -> f32 {
  return dot(w[g], xs[0]);
}

// The weights of step g and their scale (none: the values are the weights), as the quantized preludes give them.
fn w_step_values(g: u32) -> array<vec4<f32>, 1> { return load_w_step(g); }

fn w_step_scale(g: u32) -> f32 { return 1.0; }
