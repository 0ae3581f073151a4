// Y[M,N] = X[M,K] · W[N,K]ᵀ (+ bias[N]) (+ Y when ACCUMULATE: the residual add), tiled for M > 1 with
// vector loads: the form of matmul.wgsl for K a multiple of the weight format's step W_STEP (and of 4).
// Each workgroup computes a (WG_M·4)×(WG_N·4) tile of Y; each thread a 4×4 block strided by the workgroup
// size, so neighbouring threads write neighbouring columns. K is walked in TILE_K slices (a multiple of
// W_STEP) staged in workgroup memory row by row: X as vec4 loads, W a whole step per load, dequantized once
// (weights_vec_*.wgsl `load_w_step`) with the norm weight folded in under NORM_X. The inner loop reads
// vec4s along K from both tiles: 8 loads per 64 FMAs. Rows of the tiles are padded by one vec4 so that
// threads reading neighbouring rows hit different banks. With NORM_X the first TILE_M threads sum each
// row's squares from the staged X and scale the rows at the end. Needs the weights_vec_*.wgsl,
// x_fused.wgsl and x_input_vec.wgsl preludes.
// Rows of Y are params.yStride apart: N, or the whole width when W is one row range of a matrix split across
// buffers (src/model/split.ts) and Y and the bias are bound from that range's first column.

override WG_M: u32 = 16u;
override WG_N: u32 = 16u;
override TILE_K: u32 = 32u;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;

const R: u32 = 4u; // rows and columns of Y per thread
const X_VECS: u32 = W_STEP / 4u;
override TILE_M: u32 = WG_M * R;
override TILE_N: u32 = WG_N * R;
override K_VECS: u32 = TILE_K / 4u;
override ROW_VECS: u32 = K_VECS + 1u; // a tile row in workgroup memory, padded
override TILE_STEPS: u32 = TILE_K / W_STEP;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<WVec>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> norm_w: array<vec4<f32>>;

var<workgroup> xs: array<vec4<f32>, TILE_M * ROW_VECS>; // [m][k / 4]
var<workgroup> ws: array<vec4<f32>, TILE_N * ROW_VECS>; // [n][k / 4]
var<workgroup> row_scale: array<f32, TILE_M>; // NORM_X: 1/rms of each row of the tile (needs WG_N ≥ R)

fn weight_count() -> u32 { return params.N * params.K; }

@compute @workgroup_size(WG_N, WG_M)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = params.M;
  let N = params.N;
  let K = params.K;
  let K4 = K / 4u;
  let steps = K / W_STEP;
  let m0 = wid.y * TILE_M;
  let n0 = wid.x * TILE_N;
  let tid = lid.y * WG_N + lid.x;
  let threads = WG_M * WG_N;

  var acc: array<vec4<f32>, R>; // acc[i][j]: row lid.y + i·WG_M, column lid.x + j·WG_N
  var sum_squares = 0.0; // NORM_X: of row m0 + tid, in the first TILE_M threads
  for (var k0 = 0u; k0 < K; k0 += TILE_K) {
    for (var i = tid; i < TILE_M * K_VECS; i += threads) {
      let row = i / K_VECS;
      let v = i % K_VECS;
      let m = m0 + row;
      let kv = k0 / 4u + v;
      var value = vec4<f32>(0.0);
      if (m < M && kv < K4) { value = load_x4(m, kv, K4); }
      xs[row * ROW_VECS + v] = value;
    }
    for (var i = tid; i < TILE_N * TILE_STEPS; i += threads) {
      let row = i / TILE_STEPS;
      let step = i % TILE_STEPS;
      let n = n0 + row;
      let s = k0 / W_STEP + step;
      var values: array<vec4<f32>, X_VECS>;
      if (n < N && s < steps) {
        values = load_w_step(n * steps + s);
        if (NORM_X) {
          for (var c = 0u; c < X_VECS; c++) { values[c] *= norm_w[s * X_VECS + c]; }
        }
      }
      for (var c = 0u; c < X_VECS; c++) { ws[row * ROW_VECS + step * X_VECS + c] = values[c]; }
    }
    workgroupBarrier();
    if (NORM_X && tid < TILE_M) {
      for (var v = 0u; v < K_VECS; v++) {
        let value = xs[tid * ROW_VECS + v];
        sum_squares += dot(value, value);
      }
    }
    for (var v = 0u; v < K_VECS; v++) {
      var a: array<vec4<f32>, R>;
      var b: array<vec4<f32>, R>;
      for (var r = 0u; r < R; r++) {
        a[r] = xs[(lid.y + r * WG_M) * ROW_VECS + v];
        b[r] = ws[(lid.x + r * WG_N) * ROW_VECS + v];
      }
      for (var i = 0u; i < R; i++) {
        acc[i] += vec4<f32>(dot(a[i], b[0]), dot(a[i], b[1]), dot(a[i], b[2]), dot(a[i], b[3]));
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
        var v = acc[i][j] * scale;
        if (HAS_BIAS) { v += bias[n]; }
        if (ACCUMULATE) { v += y[m * params.yStride + n]; }
        y[m * params.yStride + n] = v;
      }
    }
  }
}
