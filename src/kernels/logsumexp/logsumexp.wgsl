// out[r] = log Σ exp(logits[r, j]) over the row's values above -Infinity: the normaliser of log-softmax, so a
// logprobs request reads back this and the top-k instead of the whole row. -Infinity when every value is
// -Infinity (a fully masked row). NaN and +Infinity give no meaningful value; argmax and top-k flag such rows.
// One workgroup per row (numbered linearly over a grid that may be folded into 2-D): each thread keeps a
// running (max, Σ exp(x − max)) over a strided slice, rescaling its sum when the max grows, then a tree
// reduction merges the pairs in workgroup memory. WG must be a power of two. -Infinity is recognised from its
// bits, since WGSL lets float comparisons assume infinities are absent.

override WG: u32 = 256u;

const NEG_INF_BITS: u32 = 0xff800000u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> maxes: array<f32, WG>;
var<workgroup> sums: array<f32, WG>;
// Whether the thread's (or merged) slice holds any value above -Infinity.
var<workgroup> seen: array<u32, WG>;

// (m, s) of two slices merged; `a_seen`/`b_seen` say which hold values (an empty one adds nothing).
fn merge(am: f32, asum: f32, a_seen: bool, bm: f32, bsum: f32, b_seen: bool) -> vec2<f32> {
  if (!b_seen) { return vec2(am, asum); }
  if (!a_seen) { return vec2(bm, bsum); }
  let m = max(am, bm);
  return vec2(m, asum * exp(am - m) + bsum * exp(bm - m));
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) { return; } // the same for the whole workgroup, so the barriers stay uniform
  let V = params.V;
  let base = row * V;

  var m = 0.0;
  var s = 0.0;
  var any = false;
  for (var i = lid; i < V; i += WG) {
    let v = logits[base + i];
    if (bitcast<u32>(v) == NEG_INF_BITS) { continue; }
    if (!any) {
      m = v;
      s = 1.0;
      any = true;
    } else if (v > m) {
      s = s * exp(m - v) + 1.0;
      m = v;
    } else {
      s += exp(v - m);
    }
  }
  maxes[lid] = m;
  sums[lid] = s;
  seen[lid] = select(0u, 1u, any);
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      let merged = merge(maxes[lid], sums[lid], seen[lid] != 0u, maxes[lid + stride], sums[lid + stride], seen[lid + stride] != 0u);
      maxes[lid] = merged.x;
      sums[lid] = merged.y;
      seen[lid] = seen[lid] | seen[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    // -Infinity's bits go through a var: a constant expression may not evaluate to an infinity.
    var negInf = NEG_INF_BITS;
    out[row] = select(bitcast<f32>(negInf), maxes[0] + log(sums[0]), seen[0] != 0u);
  }
}
