// SwiGLU: out[r, i] = silu(gate[r, i]) · up[r, i], where each row of gateUp is [gate (I values), up (I
// values)] as one fused gate+up matmul writes it. One thread per output element; workgroups are numbered
// linearly over a grid that is folded into 2-D when rows·I / WG exceeds the per-dimension limit.

struct Params {
  rows: u32,
  I: u32,
}

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gateUp: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// σ(x) from exp(-|x|), which never overflows: large |x| gives exactly 0 or 1, never Inf/Inf = NaN.
fn sigmoid(x: f32) -> f32 {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let I = params.I;
  let idx = (wid.x + wid.y * nwg.x) * WG + lid;
  if (idx >= params.rows * I) { return; }
  // Output (r, i) = idx reads gate at r·2I + i = idx + r·I, and up I further on.
  let gi = idx + (idx / I) * I;
  let g = gateUp[gi];
  let u = gateUp[gi + I];
  out[idx] = g * sigmoid(g) * u;
}
