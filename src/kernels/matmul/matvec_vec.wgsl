// Y[M,N] = X[M,K] · W[N,K]ᵀ (+ bias) (+ Y when ACCUMULATE) for decode, reading whole vectors: the form of
// matvec.wgsl for K a multiple of the weight format's step W_STEP (4 for f32, 8 for f16, 32 for q8/q4).
// Each workgroup computes ROWS outputs of one row of X. Its WG threads stride over the row in steps: a
// thread loads the step's W_STEP values of X once (as vec4, normalised or SwiGLU-combined on the way) and
// then, for each of the ROWS rows of W, one step of packed weights, which the weights_vec_*.wgsl prelude
// multiplies out (q4/q8: integers first, the block scale and offset once per block). Loads are what costs,
// on GPUs and CPU adapters alike: X's are shared by the ROWS rows. With NORM_X the threads also sum the
// squares of X as they read it. Needs the weights_vec_*.wgsl, x_fused.wgsl, x_input_vec.wgsl,
// reduce_*.wgsl and matvec_rows.wgsl preludes.

const X_VECS: u32 = W_STEP / 4u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<WVec>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> norm_w: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, lane: Lane) {
  let block = row_block(wid, nwg);
  if (!block.valid) { return; }
  let N = params.N;
  let K = params.K;
  let steps = K / W_STEP;

  var acc: array<f32, MAX_ROWS>;
  var sum_squares = 0.0;
  for (var s = lane.index; s < steps; s += WG) {
    var xs: array<vec4<f32>, X_VECS>;
    var x_sum = 0.0;
    for (var i = 0u; i < X_VECS; i++) {
      var v = load_x4(block.m, s * X_VECS + i, K / 4u);
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
      acc[r] += dot_w_step(min(block.n0 + r, N - 1u) * steps + s, xs, x_sum);
    }
  }
  store_rows(lane, block, acc, sum_squares);
}
