// Fused causal attention with online softmax (flash-style): out = softmax(q·Kᵀ·scale) · V per query row and
// head, where row t (position pos + t) sees cache positions 0..pos+t. The score matrix never leaves the
// workgroup. Grouped-query attention: query head h reads kv head h / (nHeads / nKvHeads).
//
// One workgroup per (row t, head h), numbered linearly with t fastest (so neighbouring workgroups read the same
// K/V rows) over a grid that may be folded into 2-D. Keys are walked in blocks of WG: thread i scores key
// k0 + i, every thread scans the block's scores for its maximum (a broadcast read, cheaper than a tree
// reduction), thread i turns its score into a probability, then each thread adds probability · V for the
// output dims it owns (d = lid, lid + WG, ...), rescaling what it had by exp(old max − new max).
// Layouts: q and out [maxT, nHeads, headDim]; kCache and vCache [nKvHeads, maxContext, headDim].

override WG: u32 = 64u;

const MAX_HEAD_DIM: u32 = 256u;
// Below any real score, yet finite: exp(NO_MAX - m) is exactly 0 for the first block's rescale.
const NO_MAX: f32 = -0x1.fffffep+127f; // -FLT_MAX

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> kCache: array<f32>;
@group(0) @binding(3) var<storage, read> vCache: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> qs: array<f32, MAX_HEAD_DIM>; // the query row, pre-multiplied by scale
var<workgroup> scores: array<f32, WG>;
var<workgroup> probs: array<f32, WG>;
// Each thread's output accumulators (only its own dims are touched, so no barriers); in workgroup memory
// because a private array cannot be sized by the WG override.
var<workgroup> acc: array<f32, MAX_HEAD_DIM>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let T = params.T;
  let D = params.headDim;
  let idx = wid.x + wid.y * nwg.x;
  if (idx >= T * params.nHeads) { return; }
  let t = idx % T;
  let h = idx / T;
  let kvh = h / (params.nHeads / params.nKvHeads);
  let qBase = (t * params.nHeads + h) * D;
  let kvBase = kvh * params.maxContext * D;
  let ctx = params.pos + t + 1u; // keys 0..pos+t: causal

  for (var d = lid; d < D; d += WG) {
    qs[d] = q[qBase + d] * params.scale;
    acc[d] = 0.0;
  }
  workgroupBarrier();

  var m = NO_MAX; // running maximum score
  var l = 0.0; // running sum of exp(score - m)
  for (var k0 = 0u; k0 < ctx; k0 += WG) {
    let n = min(WG, ctx - k0);
    var s = NO_MAX;
    if (lid < n) {
      let kRow = kvBase + (k0 + lid) * D;
      s = 0.0;
      for (var d = 0u; d < D; d++) { s = fma(qs[d], kCache[kRow + d], s); }
    }
    scores[lid] = s;
    workgroupBarrier();

    var mNew = m;
    for (var i = 0u; i < n; i++) { mNew = max(mNew, scores[i]); }
    let alpha = exp(m - mNew);
    m = mNew;
    probs[lid] = exp(s - mNew);
    // probs is next written after the next block's first barrier, which every thread reaches only after
    // reading it below; scores is rewritten only after this barrier. So two barriers per block suffice.
    workgroupBarrier();

    var sum = 0.0;
    for (var i = 0u; i < n; i++) { sum += probs[i]; }
    l = l * alpha + sum;
    for (var d = lid; d < D; d += WG) {
      var a = 0.0;
      var vi = kvBase + k0 * D + d;
      for (var i = 0u; i < n; i++) {
        a = fma(probs[i], vCache[vi], a);
        vi += D;
      }
      acc[d] = fma(acc[d], alpha, a);
    }
  }

  for (var d = lid; d < D; d += WG) { out[qBase + d] = acc[d] / l; }
}
