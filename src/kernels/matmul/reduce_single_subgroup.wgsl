// Row-sum prelude for a workgroup that is a single subgroup (WG no larger than the device's smallest
// subgroup): subgroupAdd alone, with no workgroup memory and no barrier. On a CPU adapter, whose subgroup
// is the SIMD width of one core, a barrier anywhere in a shader makes every invocation a coroutine, which
// costs more than the whole matvec. The kernel declares WG, ROWS and MAX_ROWS.
enable subgroups;

struct Lane {
  @builtin(local_invocation_index) index: u32,
}

/** The workgroup's sums of `acc`: element i for row lane.index + i·WG (valid where that is below ROWS). */
fn row_sums(lane: Lane, acc: array<f32, MAX_ROWS>) -> array<f32, MAX_ROWS> {
  var totals: array<f32, MAX_ROWS>;
  for (var r = 0u; r < ROWS; r++) {
    let s = subgroupAdd(acc[r]);
    if (r % WG == lane.index) { totals[r / WG] = s; }
  }
  return totals;
}

/** The workgroup's sum of `v`, in every thread. */
fn workgroup_sum(lane: Lane, v: f32) -> f32 {
  return subgroupAdd(v);
}
