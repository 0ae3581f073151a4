// GELU, tanh approximation (GPT-2's "gelu_new"): out = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))); with ERF the
// exact form BERT uses, out = 0.5·x·(1 + erf(x/√2)). GATED (GeGLU, Gemma): x rows are [gate | up] of width 2·D
// and out = gelu(gate)·up.
// One thread per element; workgroups are numbered linearly over a grid that is folded into 2-D when
// rows·D / WG exceeds the per-dimension limit.

override WG: u32 = 256u;
override GATED: bool = false;
override ERF: bool = false;

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const INV_SQRT_2: f32 = 0.7071067811865476;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// σ(x) from exp(-|x|), which never overflows: large |x| gives exactly 0 or 1, never Inf/Inf = NaN.
fn sigmoid(v: f32) -> f32 {
  let e = exp(-abs(v));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}

// erf by Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5e-7, about f32's rounding of values near 1): WGSL
// has no erf builtin. exp(-z²) underflows to 0 for large |z|, giving exactly ±1.
fn erf(z: f32) -> f32 {
  let a = abs(z);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign(z) * (1.0 - poly * exp(-a * a));
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let idx = (wid.x + wid.y * nwg.x) * WG + lid;
  if (idx >= params.rows * params.D) { return; }
  let row = idx / params.D;
  let gateAt = select(idx, idx + row * params.D, GATED); // row·2D + column
  let v = x[gateAt];
  // 0.5·(1 + tanh(u)) = σ(2u) exactly, and σ is stable where tanh overflows to NaN on some drivers.
  // Past |x| = 10, σ(2u) and Φ(x) are already 0 or 1 in f32; clamping keeps x³ and x² finite for huge |x|.
  let c = clamp(v, -10.0, 10.0);
  var y: f32;
  if (ERF) {
    y = 0.5 * v * (1.0 + erf(c * INV_SQRT_2));
  } else {
    let u = SQRT_2_OVER_PI * (c + 0.044715 * c * c * c);
    y = v * sigmoid(2.0 * u);
  }
  if (GATED) { y *= x[gateAt + params.D]; }
  out[idx] = y;
}
