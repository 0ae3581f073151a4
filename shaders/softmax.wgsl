// Row-wise softmax: out[r, j] = exp(x[r, j] - max_r) / Σ_k exp(x[r, k] - max_r). Subtracting the row's
// maximum keeps exp from overflowing for large logits. One workgroup per row: threads stride over the row,
// and the max and the sum are tree-reduced in workgroup memory (WG must be a power of two). Rows are
// numbered linearly over a grid that may be folded into 2-D.

struct Params {
  rows: u32,
  N: u32,
}

override WG: u32 = 256u;

// The lowest finite f32: threads with no element contribute it to the max; -Infinity inputs still give 0.
const LOWEST: f32 = -0x1.fffffep+127f;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) { return; } // the same for the whole workgroup, so the barriers stay uniform
  let N = params.N;
  let base = row * N;

  var m = LOWEST;
  for (var j = lid; j < N; j += WG) { m = max(m, x[base + j]); }
  partial[lid] = m;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) { partial[lid] = max(partial[lid], partial[lid + stride]); }
    workgroupBarrier();
  }
  let rowMax = partial[0];
  workgroupBarrier(); // every thread has read the max before partial is reused for the sum

  var s = 0.0;
  for (var j = lid; j < N; j += WG) { s += exp(x[base + j] - rowMax); }
  partial[lid] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) { partial[lid] += partial[lid + stride]; }
    workgroupBarrier();
  }
  let inv = 1.0 / partial[0];
  for (var j = lid; j < N; j += WG) { out[base + j] = exp(x[base + j] - rowMax) * inv; }
}
