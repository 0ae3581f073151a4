// Y[M,N] = X[M,K] · W[N,K]ᵀ (+ bias) (+ Y when ACCUMULATE) for decode, where M is 1 (or tiny) and the
// cost is reading W once. One workgroup per output element: its WG threads stride over K (neighbouring
// threads read neighbouring weights) and reduce in workgroup memory. Workgroups are numbered linearly over
// a grid that may be folded into 2-D for N > 65535. Needs a weights_*.wgsl prelude.

struct Params {
  M: u32,
  N: u32,
  K: u32,
}

override WG: u32 = 64u;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<WStore>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let N = params.N;
  let K = params.K;
  let idx = wid.x + wid.y * nwg.x;
  if (idx >= params.M * N) { return; }
  let m = idx / N;
  let n = idx % N;

  var sum = 0.0;
  for (var k = lid; k < K; k += WG) {
    sum = fma(x[m * K + k], load_w(n * K + k), sum);
  }
  partial[lid] = sum;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) { partial[lid] += partial[lid + stride]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    var v = partial[0];
    if (HAS_BIAS) { v += bias[n]; }
    if (ACCUMULATE) { v += y[idx]; }
    y[idx] = v;
  }
}
