// Logits of ids that must never be produced become -Infinity: logits[ids[i]] for i < count. They are the
// ids the tokenizer cannot decode (a padded vocabulary's tail, holes in its numbering), so argmax, top-k
// and a logits readback all see a row in which those ids have probability zero. One thread per listed id;
// workgroups are numbered linearly over a grid that may be folded into 2-D.

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> logits: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= params.count) { return; }
  let id = ids[i];
  // The ids are checked (< V) on the CPU; this only guarantees a bad one never writes out of bounds.
  if (id >= params.V) { return; }
  // Through a var: a constant expression may not evaluate to an infinity.
  var negativeInfinity = 0xff800000u;
  logits[id] = bitcast<f32>(negativeInfinity);
}
