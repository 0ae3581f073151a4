// Decode attention (one query row, T = 1) for adapters with subgroups: the same job, params and outputs as
// attention.wgsl's decode, laid out for a workgroup that is a single subgroup, so that it needs no workgroup
// memory and no barrier (on a CPU adapter a barrier turns every invocation into a coroutine, and a load that
// every lane makes from one address costs far more than lanes loading their own).
//
// A workgroup of LANES threads owns one KV head, ROWS of the query heads that share it and one split of the
// positions. Lane i holds head-dim units i, i + LANES, … of each of its rows' queries (pre-multiplied by scale)
// and of their output accumulators, in registers. Per key it loads its units of the key and value rows
// (consecutive lanes read consecutive units), adds up each row's score across the lanes with lanes_sum's
// subgroupShuffleXor butterfly (so every lane has it, bit for bit), and folds the key into the row's running softmax: max m, sum of exponentials l, and
// the sums of probability · value, rescaled by exp(old max − new max) only when the max grows (the score is
// the same in every lane, so the branch is uniform; on lavapipe that saved a fifth of the time).
//
// With one split the rows are normalised and written to `out`; with several each writes its unnormalised sums
// and (max, sum of exponentials) to `partials` for attention_combine.wgsl, exactly as attention.wgsl does.
enable subgroups;

override UNITS: u32; // headDim / 4
override ROWS: u32; // query heads per workgroup
override LANES: u32; // threads per workgroup (a power of two), no more than the device's smallest subgroup
override UNITS_PER_LANE: u32 = (UNITS + LANES - 1u) / LANES;

// Each lane's query and accumulator units: ROWS · UNITS_PER_LANE of them, at most MAX_SLOTS (more made LLVM
// take seconds to compile on lavapipe).
const MAX_SLOTS: u32 = 16u;
const NO_MAX: f32 = -0x1.fffffep+127f; // -FLT_MAX: exp(NO_MAX − m) is 0 for any real m

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> kCache: array<KvUnit>;
@group(0) @binding(3) var<storage, read> vCache: array<KvUnit>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> partials: array<vec4<f32>>;

// The sum of `v` over the workgroup's lanes, in every lane: a butterfly of subgroupShuffleXor (on lavapipe
// three of them cost a tenth of one subgroupAdd). The workgroup is one subgroup whose lanes are 0..LANES−1.
fn lanes_sum(v: f32) -> f32 {
  var s = v;
  for (var mask = LANES / 2u; mask > 0u; mask /= 2u) { s += subgroupShuffleXor(s, mask); }
  return s;
}

@compute @workgroup_size(LANES)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(subgroup_invocation_id) lane: u32,
) {
  let group = params.nHeads / params.nKvHeads;
  let idx = wid.x + wid.y * nwg.x;
  let split = idx % params.nSplits;
  let chunk = (idx / params.nSplits) % params.rowChunks;
  let kvHead = idx / (params.nSplits * params.rowChunks);
  if (kvHead >= params.nKvHeads) { return; }

  let firstHead = kvHead * group + chunk * ROWS;
  let rows = min(ROWS, group - chunk * ROWS);
  let kvBase = kvHead * params.maxContext * UNITS;
  // The one query sits at pos and sees pos − window + 1 .. pos (all of 0 .. pos without a window).
  let split0 = params.kFirst + split * params.splitSize;
  let windowStart = select(0u, params.pos + 1u - params.window, params.window != 0u && params.pos + 1u > params.window);
  let kStart = max(split0, windowStart);
  let kEnd = min(split0 + params.splitSize, params.pos + 1u);

  var qs: array<vec4<f32>, MAX_SLOTS>;
  var acc: array<vec4<f32>, MAX_SLOTS>;
  var m: array<f32, MAX_SLOTS>;
  var l: array<f32, MAX_SLOTS>;
  for (var r = 0u; r < ROWS; r++) {
    m[r] = NO_MAX;
    l[r] = 0.0;
    for (var i = 0u; i < UNITS_PER_LANE; i++) {
      let u = lane + i * LANES;
      var v = vec4<f32>(0.0);
      if (r < rows && u < UNITS) { v = q[(firstHead + r) * UNITS + u] * params.scale; }
      qs[r * UNITS_PER_LANE + i] = v;
      acc[r * UNITS_PER_LANE + i] = vec4<f32>(0.0);
    }
  }

  for (var k = kStart; k < kEnd; k++) {
    let row = kvBase + k * UNITS;
    var key: array<vec4<f32>, MAX_SLOTS>;
    var value: array<vec4<f32>, MAX_SLOTS>;
    for (var i = 0u; i < UNITS_PER_LANE; i++) {
      let u = lane + i * LANES;
      key[i] = vec4<f32>(0.0);
      value[i] = vec4<f32>(0.0);
      if (u < UNITS) {
        key[i] = kv_load(kCache[row + u]);
        value[i] = kv_load(vCache[row + u]);
      }
    }
    for (var r = 0u; r < ROWS; r++) {
      var part = 0.0;
      for (var i = 0u; i < UNITS_PER_LANE; i++) { part += dot(qs[r * UNITS_PER_LANE + i], key[i]); }
      let s = lanes_sum(part);
      if (s > m[r]) {
        let alpha = exp(m[r] - s);
        m[r] = s;
        l[r] *= alpha;
        for (var i = 0u; i < UNITS_PER_LANE; i++) { acc[r * UNITS_PER_LANE + i] *= alpha; }
      }
      let p = exp(s - m[r]);
      l[r] += p;
      for (var i = 0u; i < UNITS_PER_LANE; i++) {
        let a = r * UNITS_PER_LANE + i;
        acc[a] = fma(vec4<f32>(p), value[i], acc[a]);
      }
    }
  }

  for (var r = 0u; r < ROWS; r++) {
    if (r >= rows) { break; }
    let head = firstHead + r;
    let record = head * params.nSplits + split;
    for (var i = 0u; i < UNITS_PER_LANE; i++) {
      let u = lane + i * LANES;
      if (u < UNITS) {
        let a = acc[r * UNITS_PER_LANE + i];
        if (params.nSplits == 1u) {
          out[head * UNITS + u] = a / l[r];
        } else {
          partials[record * UNITS + u] = a;
        }
      }
    }
    if (params.nSplits > 1u && lane == 0u) { partials[params.statsOffset + record] = vec4<f32>(m[r], l[r], 0.0, 0.0); }
  }
}
