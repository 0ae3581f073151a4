// Y[M,N] = X[M,K] · W[N,K]ᵀ (+ bias) (+ Y when ACCUMULATE) for a chunk of tokens, in decode's layout: the
// form of matvec_vec.wgsl that multiplies each step of weights it unpacks by TOKENS rows of X, so a chunk
// reads and dequantizes W once per TOKENS tokens instead of once per token. Each workgroup computes W_ROWS
// rows of W for TOKENS consecutive tokens; its WG threads stride over K in steps of W_STEP, each reading its
// own step of X (one per token, normalised or SwiGLU-combined on the way) and of W: on a CPU adapter every
// lane loads its own addresses (reads at an address shared by all lanes cost far more there) and nothing
// goes through workgroup memory. Token and row tails reread the last token and row, whose sums are never
// stored. The workgroup is one subgroup: reduce_single_subgroup.wgsl sums the ROWS = W_ROWS · TOKENS outputs
// over its lanes without a barrier. Needs it and the weights_vec_*.wgsl, x_fused.wgsl and x_input_vec.wgsl
// preludes.
// Rows of Y are params.yStride apart: N, or the whole width when W is one row range of a matrix split across
// buffers (src/model/split.ts) and Y and the bias are bound from that range's first column.

override WG: u32 = 8u;
override W_ROWS: u32 = 4u;
override TOKENS: u32 = 4u;
override ROWS: u32 = W_ROWS * TOKENS;
const MAX_ROWS: u32 = 128u;
const MAX_TOKENS: u32 = 4u;
const MAX_W_ROWS: u32 = 64u;
override ROWS_PER_THREAD: u32 = (ROWS + WG - 1u) / WG;
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

// acc + a·b as a chain of fused multiply-adds (dot() adds its products apart, then adds to acc).
fn fma_dot(a: vec4<f32>, b: vec4<f32>, acc: f32) -> f32 {
  return fma(a.w, b.w, fma(a.z, b.z, fma(a.y, b.y, fma(a.x, b.x, acc))));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, lane: Lane) {
  let M = params.M;
  let N = params.N;
  let K = params.K;
  let K4 = K / 4u;
  let steps = K / W_STEP;
  // Workgroups are numbered over a grid that may be folded into 2-D; consecutive ones share a block of W
  // (a few KiB, kept in cache) and walk the chunk's tokens.
  let row_blocks = (N + W_ROWS - 1u) / W_ROWS;
  let token_blocks = (M + TOKENS - 1u) / TOKENS;
  let group = wid.x + wid.y * nwg.x;
  if (group >= row_blocks * token_blocks) { return; }
  let n0 = (group / token_blocks) * W_ROWS;
  let m0 = (group % token_blocks) * TOKENS;

  var acc: array<array<f32, MAX_TOKENS>, MAX_W_ROWS>; // [r][t]: row n0 + r, token m0 + t
  var sum_squares: array<f32, MAX_TOKENS>;
  for (var s = lane.index; s < steps; s += WG) {
    var norm: array<vec4<f32>, X_VECS>;
    if (NORM_X) {
      for (var i = 0u; i < X_VECS; i++) { norm[i] = norm_w[s * X_VECS + i]; }
    }
    var xs: array<array<vec4<f32>, X_VECS>, MAX_TOKENS>;
    var x_sum: array<f32, MAX_TOKENS>;
    for (var t = 0u; t < TOKENS; t++) {
      let m = min(m0 + t, M - 1u);
      // Summed apart and then stored: SwiftShader carried x_sum[t] over from the previous step when added to in place.
      var step_sum = 0.0;
      for (var i = 0u; i < X_VECS; i++) {
        var v = load_x4(m, s * X_VECS + i, K4);
        if (NORM_X) {
          sum_squares[t] = fma_dot(v, v, sum_squares[t]);
          v *= norm[i];
        }
        xs[t][i] = v;
        if (W_OFFSET != 0.0) { step_sum += v.x + v.y + v.z + v.w; }
      }
      x_sum[t] = step_sum;
    }
    for (var r = 0u; r < W_ROWS; r++) {
      let g = min(n0 + r, N - 1u) * steps + s;
      let values = w_step_values(g);
      let scale = w_step_scale(g);
      for (var t = 0u; t < TOKENS; t++) {
        var d = 0.0;
        for (var i = 0u; i < X_VECS; i++) { d = fma_dot(values[i], xs[t][i], d); }
        acc[r][t] = fma(d - W_OFFSET * x_sum[t], scale, acc[r][t]);
      }
    }
  }

  var flat: array<f32, MAX_ROWS>;
  for (var r = 0u; r < W_ROWS; r++) {
    for (var t = 0u; t < TOKENS; t++) { flat[r * TOKENS + t] = acc[r][t]; }
  }
  let totals = row_sums(lane, flat);
  var row_scale: array<f32, MAX_TOKENS>;
  for (var t = 0u; t < TOKENS; t++) {
    row_scale[t] = 1.0;
    if (NORM_X) { row_scale[t] = inverse_rms(workgroup_sum(lane, sum_squares[t]), K); }
  }
  for (var i = 0u; i < ROWS_PER_THREAD; i++) {
    let o = lane.index + i * WG;
    let n = n0 + o / TOKENS;
    let m = m0 + o % TOKENS;
    if (o < ROWS && n < N && m < M) {
      var v = totals[i] * row_scale[o % TOKENS];
      if (HAS_BIAS) { v += bias[n]; }
      if (ACCUMULATE) { v += y[m * params.yStride + n]; }
      y[m * params.yStride + n] = v;
    }
  }
}
