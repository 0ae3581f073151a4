// Y[M,N] = X[M,K] · W[N,K]ᵀ (+ bias) (+ Y when ACCUMULATE) for decode, where M is 1 (or tiny) and the
// cost is reading W once, one element at a time: the form for any K (matvec_vec.wgsl, for K a multiple of
// the weight format's vector step, is the fast one). Each workgroup computes ROWS outputs of one row of X:
// its WG threads stride over K (neighbouring threads read neighbouring weights of each row), then
// `row_sums` from a reduce_*.wgsl prelude adds the threads' partial sums (subgroup operations where the
// device has them). With NORM_X the threads also sum the row's squares as they read it, and the outputs
// are scaled by its 1/rms at the end. Workgroups are numbered linearly over a grid that may be folded into
// 2-D for large N. Needs the weights_*.wgsl, x_fused.wgsl and x_input.wgsl preludes.

override WG: u32 = 64u;
override ROWS: u32 = 4u;
const MAX_ROWS: u32 = 8u;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<WStore>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> norm_w: array<f32>;

fn weight_count() -> u32 { return params.N * params.K; }

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, lane: Lane) {
  let N = params.N;
  let K = params.K;
  let groupsPerRow = (N + ROWS - 1u) / ROWS;
  let group = wid.x + wid.y * nwg.x;
  if (group >= params.M * groupsPerRow) { return; }
  let m = group / groupsPerRow;
  let n0 = (group % groupsPerRow) * ROWS;
  let rows = min(ROWS, N - n0);

  var acc: array<f32, MAX_ROWS>;
  var sum_squares = 0.0;
  for (var k = lane.index; k < K; k += WG) {
    var xk = load_x(m, k, K);
    if (NORM_X) {
      sum_squares = fma(xk, xk, sum_squares);
      xk *= norm_w[k];
    }
    for (var r = 0u; r < rows; r++) {
      acc[r] = fma(xk, load_w((n0 + r) * K + k), acc[r]);
    }
  }
  let total = row_sums(lane, acc);
  var row_scale = 1.0;
  if (NORM_X) { row_scale = inverse_rms(workgroup_sum(lane, sum_squares), K); }
  if (lane.index < rows) {
    let n = n0 + lane.index;
    var v = total * row_scale;
    if (HAS_BIAS) { v += bias[n]; }
    if (ACCUMULATE) { v += y[m * N + n]; }
    y[m * N + n] = v;
  }
}
