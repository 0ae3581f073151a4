// Flash-decoding's second pass: merges the per-split results of attention.wgsl. For each query row (t, head)
// split s left unnormalised sums o_s (UNITS vec4) and (m_s, l_s): its maximum score and sum of exp(score − m_s).
// With M = max m_s: out = Σ exp(m_s − M)·o_s / Σ exp(m_s − M)·l_s. One workgroup per row; threads over units.

override UNITS: u32;
override WG: u32 = 32u;

const NO_MAX: f32 = -0x1.fffffep+127f; // -FLT_MAX

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partials: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) { return; }
  let first = row * params.nSplits;
  var maxScore = NO_MAX;
  for (var s = 0u; s < params.nSplits; s++) { maxScore = max(maxScore, partials[params.statsOffset + first + s].x); }
  for (var u = lid; u < UNITS; u += WG) {
    var sum = 0.0;
    var o = vec4<f32>(0.0);
    for (var s = 0u; s < params.nSplits; s++) {
      let stats = partials[params.statsOffset + first + s];
      let w = exp(stats.x - maxScore);
      sum = fma(w, stats.y, sum);
      o = fma(vec4<f32>(w), partials[(first + s) * UNITS + u], o);
    }
    out[row * UNITS + u] = o / sum;
  }
}
