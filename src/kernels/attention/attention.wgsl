// Causal grouped-query attention over the KV cache with online softmax (flash style): out = softmax(q·Kᵀ·scale)·V,
// where query row t (position pos + t) sees cache positions 0..pos+t, or with a sliding window (window > 0) only
// the last `window` of them, pos+t−window+1..pos+t. Needs a KV accessor prelude (KvUnit,
// kv_load). Layouts, in units of 4 head dims: q and out [maxT, nHeads, UNITS]; kCache and vCache
// [nKvHeads, maxContext, UNITS].
//
// A workgroup owns one KV head, ROWS of its query rows and one split of the positions. Its rows are
// g = chunk·ROWS .. chunk·ROWS + ROWS − 1 in the order g = t·group + j (query row t, head kvHead·group + j), so
// every head that shares the KV head (and, in prefill, neighbouring rows) is served by one read of each key and
// value. Keys are walked in blocks of BK = threads: thread i scores key k0 + i against all ROWS queries
// (reading its row once with vector loads), threads 0..ROWS−1 take their row's block maximum, every thread turns
// its scores into probabilities, then thread (kq, u) adds probability · V for head-dim unit u over keys
// kq, kq + BK/UNITS, … (consecutive threads read consecutive units of a value row), rescaling what it had by
// exp(old max − new max). At the end the key groups' sums are added up per row.
//
// With one split the rows are normalised and written to `out`. With several (flash-decoding: long contexts
// spread over more workgroups) each writes its unnormalised sums and (max, sum of exponentials) to
// `partials`, and attention_combine.wgsl merges them.

override UNITS: u32; // headDim / 4, at most BK
override ROWS: u32; // query rows per workgroup, at most MAX_ROWS
override BK: u32 = 64u; // keys per block = threads per workgroup

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> kCache: array<KvUnit>;
@group(0) @binding(3) var<storage, read> vCache: array<KvUnit>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> partials: array<vec4<f32>>;

var<workgroup> qs: array<vec4<f32>, ROWS * UNITS>; // the rows' queries, pre-multiplied by scale

// The first cache position a query at position p sees.
fn windowStart(p: u32) -> u32 {
  return select(0u, p + 1u - params.window, params.window != 0u && p + 1u > params.window);
}

@compute @workgroup_size(BK)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let group = params.nHeads / params.nKvHeads;
  let idx = wid.x + wid.y * nwg.x;
  let split = idx % params.nSplits;
  let chunk = (idx / params.nSplits) % params.rowChunks;
  let kvHead = idx / (params.nSplits * params.rowChunks);
  if (kvHead >= params.nKvHeads) { return; }

  let firstRow = chunk * ROWS;
  let lastRow = min(firstRow + ROWS, params.T * group) - 1u;
  let kvBase = kvHead * params.maxContext * UNITS;
  // Splits cover the positions from the first one row 0 sees (kFirst) on; no row of this workgroup sees
  // before its first row's window or past its last row's causal limit.
  let split0 = params.kFirst + split * params.splitSize;
  let kStart = max(split0, windowStart(params.pos + firstRow / group));
  let kEnd = min(split0 + params.splitSize, params.pos + lastRow / group + 1u);

  for (var i = lid; i < ROWS * UNITS; i += BK) {
    let g = firstRow + i / UNITS;
    var v = vec4<f32>(0.0);
    if (g <= lastRow) {
      let row = (g / group) * params.nHeads + kvHead * group + g % group;
      v = q[row * UNITS + i % UNITS] * params.scale;
    }
    qs[i] = v;
  }

  // The PV stage's thread layout: head-dim unit u of key group kq (threads past nkq·UNITS idle there).
  let nkq = BK / UNITS;
  let kq = lid / UNITS;
  let u = lid % UNITS;
  var acc: array<vec4<f32>, MAX_ROWS>;
  for (var r = 0u; r < ROWS; r++) { acc[r] = vec4<f32>(0.0); }
  // Thread r < ROWS keeps row r's running maximum and sum of exp(score − max).
  var m = NO_MAX;
  var l = 0.0;

  for (var k0 = kStart; k0 < kEnd; k0 += BK) {
    let n = min(BK, kEnd - k0);
    // The previous block's readers of scores and rowAlpha (and, first time, the writers of qs) are done.
    workgroupBarrier();
    let k = k0 + lid;
    var s: array<f32, MAX_ROWS>;
    for (var r = 0u; r < ROWS; r++) { s[r] = 0.0; }
    if (lid < n) {
      let kRow = kvBase + k * UNITS;
      for (var d = 0u; d < UNITS; d++) {
        let kv = kv_load(kCache[kRow + d]);
        for (var r = 0u; r < ROWS; r++) { s[r] += dot(qs[r * UNITS + d], kv); }
      }
    }
    for (var r = 0u; r < ROWS; r++) {
      let g = firstRow + r;
      let p = params.pos + g / group;
      let visible = lid < n && g <= lastRow && k <= p && k >= windowStart(p);
      scores[r * BK + lid] = select(NO_MAX, s[r], visible);
    }
    workgroupBarrier();

    softmax_block(lid, n, &m, &l);
    if (kq < nkq) {
      for (var r = 0u; r < ROWS; r++) { acc[r] *= rowAlpha[r]; }
      for (var j = kq; j < n; j += nkq) {
        let v = kv_load(vCache[kvBase + (k0 + j) * UNITS + u]);
        for (var r = 0u; r < ROWS; r++) { acc[r] = fma(vec4<f32>(scores[r * BK + j]), v, acc[r]); }
      }
    }
  }

  if (lid < ROWS) {
    rowMax[lid] = m;
    rowSum[lid] = l;
  }
  for (var r = 0u; r < ROWS; r++) {
    let total = sum_key_groups(lid, acc[r], nkq);
    let g = firstRow + r;
    if (lid < UNITS && g <= lastRow) {
      let row = (g / group) * params.nHeads + kvHead * group + g % group;
      if (params.nSplits == 1u) {
        out[row * UNITS + lid] = total / rowSum[r];
      } else {
        let record = row * params.nSplits + split;
        partials[record * UNITS + lid] = total;
        if (lid == 0u) { partials[params.statsOffset + record] = vec4<f32>(rowMax[r], rowSum[r], 0.0, 0.0); }
      }
    }
  }
}
