// Row-sum prelude using subgroup operations (device feature `subgroups`): each subgroup adds its lanes
// with subgroupAdd, then one barrier and each thread adds the subgroups' partial sums of the rows it stores.
// The kernel declares WG, ROWS, MAX_ROWS and ROWS_PER_THREAD and takes a `Lane` as its invocation's identity.
enable subgroups;

struct Lane {
  @builtin(local_invocation_index) index: u32,
  @builtin(subgroup_invocation_id) sg_lane: u32,
  @builtin(subgroup_size) sg_size: u32,
}

var<workgroup> sg_partial: array<f32, WG * ROWS>;

/** The workgroup's sums of `acc`: element i for row lane.index + i·WG (valid where that is below ROWS). */
fn row_sums(lane: Lane, acc: array<f32, MAX_ROWS>) -> array<f32, MAX_ROWS> {
  let subgroups = (WG + lane.sg_size - 1u) / lane.sg_size;
  let sg = lane.index / lane.sg_size;
  for (var r = 0u; r < ROWS; r++) {
    let s = subgroupAdd(acc[r]);
    if (lane.sg_lane == 0u) { sg_partial[r * WG + sg] = s; }
  }
  workgroupBarrier();
  var totals: array<f32, MAX_ROWS>;
  for (var i = 0u; i < ROWS_PER_THREAD; i++) {
    let r = lane.index + i * WG;
    if (r < ROWS) {
      for (var j = 0u; j < subgroups; j++) { totals[i] += sg_partial[r * WG + j]; }
    }
  }
  return totals;
}

/** The workgroup's sum of `v`, in every thread. Reuses `sg_partial`, so it must follow `row_sums`. */
fn workgroup_sum(lane: Lane, v: f32) -> f32 {
  let subgroups = (WG + lane.sg_size - 1u) / lane.sg_size;
  let s = subgroupAdd(v);
  workgroupBarrier(); // row_sums has read its partial sums
  if (lane.sg_lane == 0u) { sg_partial[lane.index / lane.sg_size] = s; }
  workgroupBarrier();
  var total = 0.0;
  for (var i = 0u; i < subgroups; i++) { total += sg_partial[i]; }
  return total;
}
