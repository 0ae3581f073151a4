// Row-sum prelude using subgroup operations (device feature `subgroups`): each subgroup adds its lanes
// with subgroupAdd, then one barrier and the first ROWS threads add the subgroups' partial sums.
// The kernel declares WG, ROWS and MAX_ROWS and takes a `Lane` as its invocation's identity.
enable subgroups;

struct Lane {
  @builtin(local_invocation_index) index: u32,
  @builtin(subgroup_invocation_id) sg_lane: u32,
  @builtin(subgroup_size) sg_size: u32,
}

var<workgroup> sg_partial: array<f32, WG * MAX_ROWS>;

/** The workgroup's sum of `acc[r]` for each r < ROWS, valid in thread r only. */
fn row_sums(lane: Lane, acc: array<f32, MAX_ROWS>) -> f32 {
  let subgroups = (WG + lane.sg_size - 1u) / lane.sg_size;
  let sg = lane.index / lane.sg_size;
  for (var r = 0u; r < ROWS; r++) {
    let s = subgroupAdd(acc[r]);
    if (lane.sg_lane == 0u) { sg_partial[r * WG + sg] = s; }
  }
  workgroupBarrier();
  var total = 0.0;
  if (lane.index < ROWS) {
    for (var i = 0u; i < subgroups; i++) { total += sg_partial[lane.index * WG + i]; }
  }
  return total;
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
