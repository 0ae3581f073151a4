// Y[M,N] = X[M,K] · W[N,K]ᵀ (+ bias) (+ Y when ACCUMULATE) for decode, reading whole vectors: the form of
// matvec.wgsl for K a multiple of the weight format's step W_STEP (4 for f32, 8 for f16, 32 for q8/q4).
// Each workgroup computes ROWS outputs of one row of X. Its WG threads stride over the row in steps: a
// thread loads the step's W_STEP values of X once (as vec4, normalised or SwiGLU-combined on the way) and
// then, for each of the ROWS rows of W, one step of packed weights, which the weights_vec_*.wgsl prelude
// multiplies out (q4/q8: integers first, the block scale and offset once per block). `row_sums` from a
// reduce_*.wgsl prelude adds the threads' partial sums. With NORM_X the threads also sum the squares of X
// as they read it, and the outputs are scaled by its 1/rms at the end. Workgroups are numbered linearly
// over a grid that may be folded into 2-D for large N. Needs the weights_vec_*.wgsl, x_fused.wgsl and
// x_input_vec.wgsl preludes.

override WG: u32 = 64u;
override ROWS: u32 = 4u;
const MAX_ROWS: u32 = 8u;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;
const X_VECS: u32 = W_STEP / 4u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<WVec>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> norm_w: array<vec4<f32>>;

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
  let steps = K / W_STEP;

  var acc: array<f32, MAX_ROWS>;
  var sum_squares = 0.0;
  for (var s = lane.index; s < steps; s += WG) {
    var xs: array<vec4<f32>, X_VECS>;
    var x_sum = 0.0;
    for (var i = 0u; i < X_VECS; i++) {
      var v = load_x4(m, s * X_VECS + i, K / 4u);
      if (NORM_X) {
        sum_squares += dot(v, v);
        v *= norm_w[s * X_VECS + i];
      }
      xs[i] = v;
      if (W_OFFSET != 0.0) { x_sum += v.x + v.y + v.z + v.w; }
    }
    // Every thread runs all ROWS rows (a fixed count the compiler unrolls); past N it rereads row N-1,
    // whose extra sums are never stored.
    for (var r = 0u; r < ROWS; r++) {
      acc[r] += dot_w_step(min(n0 + r, N - 1u) * steps + s, xs, x_sum);
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
