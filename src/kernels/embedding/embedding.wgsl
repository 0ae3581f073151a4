// Token embedding lookup: out[t] = w[ids[t]]·scale (+ posTable[pos + t] when HAS_POSITIONS: GPT-2's learned
// positions; scale is Gemma's √hidden, 1 elsewhere). The table `w` is f32 or f16 through a weights_*.wgsl
// prelude. It may be one part of a table split across buffers (src/model/split.ts): rows [first, first + V)
// of `total`; a thread whose id another part holds returns, as that part's launch writes the row. One thread
// per output element; workgroups are numbered linearly over a grid that is folded into 2-D when rows·D / WG
// exceeds the limit.

override WG: u32 = 256u;
override HAS_POSITIONS: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> w: array<WStore>;
@group(0) @binding(3) var<storage, read> posTable: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let D = params.D;
  let idx = (wid.x + wid.y * nwg.x) * WG + lid;
  if (idx >= params.rows * D) { return; }
  let t = idx / D;
  let d = idx - t * D;
  // The model rejects ids ≥ total on the CPU; clamping only guarantees a bad id never reads past the table
  // (WGSL's out-of-bounds behaviour is implementation-defined): it yields the last row.
  let id = min(ids[t], params.total - 1u);
  if (id < params.first || id - params.first >= params.V) { return; }
  var v = load_w((id - params.first) * D + d) * params.scale;
  if (HAS_POSITIONS) { v += posTable[(params.pos + t) * D + d]; }
  out[idx] = v;
}
