// Row-sum prelude without subgroups: a tree reduction in workgroup memory over all ROWS rows at once
// (log2(WG) barriers shared by the rows). The kernel declares WG (a power of two), ROWS and MAX_ROWS.

struct Lane {
  @builtin(local_invocation_index) index: u32,
}

var<workgroup> wg_partial: array<f32, WG * MAX_ROWS>;

/** The workgroup's sum of `acc[r]` for each r < ROWS, valid in thread r only. */
fn row_sums(lane: Lane, acc: array<f32, MAX_ROWS>) -> f32 {
  for (var r = 0u; r < ROWS; r++) { wg_partial[r * WG + lane.index] = acc[r]; }
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lane.index < stride) {
      for (var r = 0u; r < ROWS; r++) { wg_partial[r * WG + lane.index] += wg_partial[r * WG + lane.index + stride]; }
    }
    workgroupBarrier();
  }
  var total = 0.0;
  if (lane.index < ROWS) { total = wg_partial[lane.index * WG]; }
  return total;
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
