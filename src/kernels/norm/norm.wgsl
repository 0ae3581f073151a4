// Row-wise normalisation of x[rows, D] into out[rows, D], one workgroup per row; LAYER picks the variant:
//   RMSNorm:   out = x / sqrt(mean(x²) + eps) · weight
//   LayerNorm: out = (x − mean) / sqrt(var + eps) · weight (+ bias), with the biased variance.
// ACCUMULATE adds the result to out instead (Gemma's post-attention and post-MLP norms feed the residual).
// LayerNorm takes the mean first and then the variance of (x − mean): the one-pass E[x²] − mean² loses
// precision when |mean| is large against the spread. Workgroups are numbered linearly over a grid that may
// be folded into 2-D.

override WG: u32 = 256u; // a power of two, for the tree reduction
override LAYER: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> partial: array<f32, WG>;

// Sum of `v` over the workgroup; every thread gets the total. Call from workgroup-uniform control flow.
fn workgroup_sum(v: f32, lid: u32) -> f32 {
  partial[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) { partial[lid] += partial[lid + stride]; }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier(); // everyone has read the total before a next call overwrites it
  return total;
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) { return; }
  let D = params.D;
  let base = row * D;
  let n = f32(D);

  var mean = 0.0;
  if (LAYER) {
    var s = 0.0;
    for (var i = lid; i < D; i += WG) { s += x[base + i]; }
    mean = workgroup_sum(s, lid) / n;
  }
  var ss = 0.0;
  for (var i = lid; i < D; i += WG) {
    let c = x[base + i] - mean;
    ss = fma(c, c, ss);
  }
  let scale = inverseSqrt(workgroup_sum(ss, lid) / n + params.eps);

  for (var i = lid; i < D; i += WG) {
    var v = (x[base + i] - mean) * scale * weight[i];
    if (HAS_BIAS) { v += bias[i]; }
    if (ACCUMULATE) { v += out[base + i]; }
    out[base + i] = v;
  }
}
