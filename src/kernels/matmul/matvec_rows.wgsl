// What the two matvec kernels (matvec.wgsl, matvec_vec.wgsl) share: their shape constants, which rows a
// workgroup owns, and the end of the kernel: adding the threads' partial sums (`row_sums` from a
// reduce_*.wgsl prelude), the fused norm's 1/rms, bias, residual and the store. Each kernel declares its own
// bindings (the layout test reads them there).
// Rows of Y are params.yStride apart: N, or the whole width when W is one row range of a matrix split across
// buffers (src/model/split.ts) and Y and the bias are bound from that range's first column.

override WG: u32 = 64u;
override ROWS: u32 = 4u;
const MAX_ROWS: u32 = 32u;
// Rows of the workgroup's ROWS each thread stores: thread t stores rows t, t + WG, … (one unless WG < ROWS).
override ROWS_PER_THREAD: u32 = (ROWS + WG - 1u) / WG;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;

fn weight_count() -> u32 { return params.N * params.K; }

// Workgroups are numbered linearly over a grid that may be folded into 2-D for large N; each computes ROWS
// outputs (from row n0 of W) of one row m of X.
struct RowBlock {
  m: u32,
  n0: u32,
  // false for the grid's padding past the last block
  valid: bool,
}

fn row_block(wid: vec3<u32>, nwg: vec3<u32>) -> RowBlock {
  let groups_per_row = (params.N + ROWS - 1u) / ROWS;
  let group = wid.x + wid.y * nwg.x;
  return RowBlock(group / groups_per_row, (group % groups_per_row) * ROWS, group < params.M * groups_per_row);
}

// Adds the workgroup's partial sums `acc[r]` of rows n0 + r and stores them, scaled by the row's 1/rms
// under NORM_X (from the threads' `sum_squares`), plus bias and residual. Every thread must call it.
fn store_rows(lane: Lane, block: RowBlock, acc: array<f32, MAX_ROWS>, sum_squares: f32) {
  let N = params.N;
  let totals = row_sums(lane, acc);
  var row_scale = 1.0;
  if (NORM_X) { row_scale = inverse_rms(workgroup_sum(lane, sum_squares), params.K); }
  for (var i = 0u; i < ROWS_PER_THREAD; i++) {
    let r = lane.index + i * WG;
    let n = block.n0 + r;
    if (r < ROWS && n < N) {
      var v = totals[i] * row_scale;
      if (HAS_BIAS) { v += bias[n]; }
      if (ACCUMULATE) { v += y[block.m * params.yStride + n]; }
      y[block.m * params.yStride + n] = v;
    }
  }
}
