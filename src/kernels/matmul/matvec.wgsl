// Y[M,N] = X[M,K] · W[N,K]ᵀ (+ bias) (+ Y when ACCUMULATE) for decode, where M is 1 (or tiny) and the
// cost is reading W once, one element at a time: the form for any K (matvec_vec.wgsl, for K a multiple of
// the weight format's vector step, is the fast one). Each workgroup computes ROWS outputs of one row of X:
// its WG threads stride over K (neighbouring threads read neighbouring weights of each row). With NORM_X
// the threads also sum the row's squares as they read it. Needs the weights_*.wgsl, x_fused.wgsl,
// x_input.wgsl, reduce_*.wgsl and matvec_rows.wgsl preludes.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<WStore>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> norm_w: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, lane: Lane) {
  let block = row_block(wid, nwg);
  if (!block.valid) { return; }
  let N = params.N;
  let K = params.K;
  let rows = min(ROWS, N - block.n0);

  var acc: array<f32, MAX_ROWS>;
  var sum_squares = 0.0;
  for (var k = lane.index; k < K; k += WG) {
    var xk = load_x(block.m, k, K);
    if (NORM_X) {
      sum_squares = fma(xk, xk, sum_squares);
      xk *= norm_w[k];
    }
    for (var r = 0u; r < rows; r++) {
      acc[r] = fma(xk, load_w((block.n0 + r) * K + k), acc[r]);
    }
  }
  store_rows(lane, block, acc, sum_squares);
}
