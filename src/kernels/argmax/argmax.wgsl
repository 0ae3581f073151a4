// Greedy sampling: out[r] = the index of the largest logit of row r, the lowest such index on ties (as
// torch.argmax). One workgroup per row: each thread scans a strided slice (its indices increasing), then a
// tree reduction over (value, index) pairs in workgroup memory. WG must be a power of two. Rows are
// numbered linearly over a grid that may be folded into 2-D.
//
// A row the sampler could not turn into probabilities gets NONE instead of an index: one holding NaN or
// +Infinity (a broken checkpoint), or one with no finite value (every logit -Infinity, as masked ids are).
// Non-finite values are recognised from their bits, since WGSL lets float comparisons assume they are absent.

override WG: u32 = 256u;

// Index of a thread that saw no element (V < WG).
const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

var<workgroup> bestValue: array<f32, WG>;
var<workgroup> bestIndex: array<u32, WG>;
// Set by any thread that reads NaN or +Infinity.
var<workgroup> broken: atomic<u32>;

fn isNanOrPosInf(bits: u32) -> bool {
  return (bits & 0x7fffffffu) > 0x7f800000u || bits == 0x7f800000u;
}

// Whether (v, i) beats the best so far (bv, bi). Comparing indices on equal values, rather than relying on
// scan order, keeps the lowest index across threads; NONE as the best lets even -Infinity win.
fn beats(v: f32, i: u32, bv: f32, bi: u32) -> bool {
  return i != NONE && (bi == NONE || v > bv || (v == bv && i < bi));
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) { return; } // the same for the whole workgroup, so the barriers stay uniform
  let V = params.V;
  let base = row * V;

  if (lid == 0u) { atomicStore(&broken, 0u); }
  workgroupBarrier();
  var bv = 0.0;
  var bi = NONE;
  var sawBroken = false;
  for (var i = lid; i < V; i += WG) {
    let v = logits[base + i];
    sawBroken = sawBroken || isNanOrPosInf(bitcast<u32>(v));
    if (beats(v, i, bv, bi)) {
      bv = v;
      bi = i;
    }
  }
  if (sawBroken) { atomicStore(&broken, 1u); }
  bestValue[lid] = bv;
  bestIndex[lid] = bi;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride && beats(bestValue[lid + stride], bestIndex[lid + stride], bestValue[lid], bestIndex[lid])) {
      bestValue[lid] = bestValue[lid + stride];
      bestIndex[lid] = bestIndex[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let noFiniteBest = bitcast<u32>(bestValue[0]) == 0xff800000u;
    out[row] = select(bestIndex[0], NONE, atomicLoad(&broken) != 0u || noFiniteBest);
  }
}
