// Row-sum prelude without subgroups: a tree reduction in workgroup memory over all ROWS rows at once
// (log2(WG) barriers shared by the rows). The kernel declares WG (a power of two), ROWS, MAX_ROWS and
// ROWS_PER_THREAD.

struct Lane {
  @builtin(local_invocation_index) index: u32,
}

var<workgroup> wg_partial: array<f32, WG * ROWS>;

/** The workgroup's sums of `acc`: element i for row lane.index + i·WG (valid where that is below ROWS). */
fn row_sums(lane: Lane, acc: array<f32, MAX_ROWS>) -> array<f32, MAX_ROWS> {
  for (var r = 0u; r < ROWS; r++) { wg_partial[r * WG + lane.index] = acc[r]; }
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lane.index < stride) {
      for (var r = 0u; r < ROWS; r++) { wg_partial[r * WG + lane.index] += wg_partial[r * WG + lane.index + stride]; }
    }
    workgroupBarrier();
  }
  var totals: array<f32, MAX_ROWS>;
  for (var i = 0u; i < ROWS_PER_THREAD; i++) {
    let r = lane.index + i * WG;
    if (r < ROWS) { totals[i] = wg_partial[r * WG]; }
  }
  return totals;
}

/** The workgroup's sum of `v`, in every thread. Reuses `wg_partial`, so it must follow `row_sums`. */
fn workgroup_sum(lane: Lane, v: f32) -> f32 {
  workgroupBarrier(); // row_sums has read its partial sums
  wg_partial[lane.index] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lane.index < stride) { wg_partial[lane.index] += wg_partial[lane.index + stride]; }
    workgroupBarrier();
  }
  return wg_partial[0];
}
