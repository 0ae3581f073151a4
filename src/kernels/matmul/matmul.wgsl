// Y[M,N] = X[M,K] · W[N,K]ᵀ (+ bias[N]) (+ Y when ACCUMULATE: the residual add), tiled for M > 1.
// Each workgroup computes a (WG_M·4)×(WG_N·4) tile of Y; each thread a 4×4 block strided by the
// workgroup size, so neighbouring threads write neighbouring columns. K is walked in TILE_K slices staged
// in workgroup memory. With NORM_X (RMSNorm fused into the input) the staged weights carry the norm weight
// and the first TILE_M threads sum each row's squares from the staged X, scaling the rows at the end.
// Needs the weights_*.wgsl (load_w), x_fused.wgsl and x_input.wgsl (load_x) preludes.
// Rows of Y are params.yStride apart: N, or the whole width when W is one row range of a matrix split across
// buffers (src/model/split.ts) and Y and the bias are bound from that range's first column.

override WG_M: u32 = 16u;
override WG_N: u32 = 16u;
override TILE_K: u32 = 16u;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;

const R: u32 = 4u; // rows and columns of Y per thread
override TILE_M: u32 = WG_M * R;
override TILE_N: u32 = WG_N * R;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<WStore>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> norm_w: array<f32>;

fn weight_count() -> u32 { return params.N * params.K; }

var<workgroup> xs: array<f32, TILE_M * TILE_K>; // [k][m]
var<workgroup> ws: array<f32, TILE_N * TILE_K>; // [k][n]
var<workgroup> row_scale: array<f32, TILE_M>; // NORM_X: 1/rms of each row of the tile (needs WG_N ≥ R)

@compute @workgroup_size(WG_N, WG_M)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = params.M;
  let N = params.N;
  let K = params.K;
  let m0 = wid.y * TILE_M;
  let n0 = wid.x * TILE_N;
  let tid = lid.y * WG_N + lid.x;
  let threads = WG_M * WG_N;

  var acc: array<f32, 16>;
  var sum_squares = 0.0; // NORM_X: of row m0 + tid, in the first TILE_M threads
  for (var k0 = 0u; k0 < K; k0 += TILE_K) {
    for (var i = tid; i < TILE_M * TILE_K; i += threads) {
      let m = m0 + i / TILE_K;
      let k = k0 + i % TILE_K;
      var v = 0.0;
      if (m < M && k < K) { v = load_x(m, k, K); }
      xs[(i % TILE_K) * TILE_M + i / TILE_K] = v;
    }
    for (var i = tid; i < TILE_N * TILE_K; i += threads) {
      let n = n0 + i / TILE_K;
      let k = k0 + i % TILE_K;
      var v = 0.0;
      if (n < N && k < K) {
        v = load_w(n * K + k);
        if (NORM_X) { v *= norm_w[k]; }
      }
      ws[(i % TILE_K) * TILE_N + i / TILE_K] = v;
    }
    workgroupBarrier();
    if (NORM_X && tid < TILE_M) {
      for (var kk = 0u; kk < TILE_K; kk++) {
        let v = xs[kk * TILE_M + tid];
        sum_squares = fma(v, v, sum_squares);
      }
    }
    for (var kk = 0u; kk < TILE_K; kk++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var r = 0u; r < R; r++) {
        a[r] = xs[kk * TILE_M + lid.y + r * WG_M];
        b[r] = ws[kk * TILE_N + lid.x + r * WG_N];
      }
      for (var i = 0u; i < R; i++) {
        for (var j = 0u; j < R; j++) {
          acc[i * R + j] = fma(a[i], b[j], acc[i * R + j]);
        }
      }
    }
    workgroupBarrier();
  }
  if (NORM_X) {
    if (tid < TILE_M) { row_scale[tid] = inverse_rms(sum_squares, K); }
    workgroupBarrier();
  }

  for (var i = 0u; i < R; i++) {
    let m = m0 + lid.y + i * WG_M;
    var scale = 1.0;
    if (NORM_X) { scale = row_scale[lid.y + i * WG_M]; }
    for (var j = 0u; j < R; j++) {
      let n = n0 + lid.x + j * WG_N;
      if (m < M && n < N) {
        var v = acc[i * R + j] * scale;
        if (HAS_BIAS) { v += bias[n]; }
        if (ACCUMULATE) { v += y[m * params.yStride + n]; }
        y[m * params.yStride + n] = v;
      }
    }
  }
}
