// out = a + b, element-wise over [rows, D]. One thread per element; workgroups are numbered linearly over a
// grid that is folded into 2-D when rows·D / WG exceeds the per-dimension limit.

struct Params {
  rows: u32,
  D: u32,
}

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let idx = (wid.x + wid.y * nwg.x) * WG + lid;
  if (idx >= params.rows * params.D) { return; }
  out[idx] = a[idx] + b[idx];
}
