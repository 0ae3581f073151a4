// Vector weight prelude, q8 (layout in src/quant/format.ts and weights_q8.wgsl): a step is one block of 32,
// two vec4<u32> of bytes and its f16 scale. The kernel defines `weight_count()` (elements of W).
alias WVec = vec4<u32>;
const W_STEP: u32 = 32u;
// What the bytes store over the integer: dot_w_step takes Σ x of the step to remove it once per block.
const W_OFFSET: f32 = 128.0;

fn w_scale(block: u32) -> f32 {
  let word = ((weight_count() + 31u) / 32u) * 8u + (block >> 1u);
  return unpack2x16float(w[word >> 2u][word & 3u])[block & 1u];
}

// The four bytes of a word as f32 (the i32 conversion is cheaper than the u32 one on CPUs, the values are < 2^8).
fn w_bytes(word: u32) -> vec4<f32> {
  return vec4<f32>(bitcast<vec4<i32>>((vec4<u32>(word) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(255u)));
}

// Σ w·x over step g (flat elements 32g..32g+31), with `x_sum` = Σ x of the step.
fn dot_w_step(g: u32, xs: array<vec4<f32>, 8>, x_sum: f32) -> f32 {
  let lo = w[2u * g];
  let hi = w[2u * g + 1u];
  var d = 0.0;
  for (var t = 0u; t < 4u; t++) {
    d += dot(w_bytes(lo[t]), xs[t]) + dot(w_bytes(hi[t]), xs[4u + t]);
  }
  return (d - W_OFFSET * x_sum) * w_scale(g);
}

// The 32 weights of step g as stored (integers, W_OFFSET over the value): the weights are
// (w_step_values(g) - W_OFFSET) · w_step_scale(g).
fn w_step_values(g: u32) -> array<vec4<f32>, 8> {
  let lo = w[2u * g];
  let hi = w[2u * g + 1u];
  var out: array<vec4<f32>, 8>;
  for (var t = 0u; t < 4u; t++) {
    out[t] = w_bytes(lo[t]);
    out[4u + t] = w_bytes(hi[t]);
  }
  return out;
}

fn w_step_scale(g: u32) -> f32 { return w_scale(g); }

// The 32 weights of step g, dequantized.
fn load_w_step(g: u32) -> array<vec4<f32>, 8> {
  let values = w_step_values(g);
  let scale = w_scale(g);
  var out: array<vec4<f32>, 8>;
  for (var i = 0u; i < 8u; i++) { out[i] = (values[i] - W_OFFSET) * scale; }
  return out;
}
