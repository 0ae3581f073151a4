// Bidirectional multi-head attention over a packed batch of sequences (BERT-style encoders, no KV cache):
// out = softmax(q·Kᵀ·scale)·V per head, every query of a sequence seeing every key of the same sequence and
// none of another, with online softmax (flash style). q, k and v are read in place from the fused projection's
// output: qkv rows are [q | k | v], each nHeads·UNITS vec4 wide; out rows are nHeads·UNITS vec4.
//
// The host lists the work as blocks (firstRow, rows, keyStart, keyCount): ROWS or fewer query rows of one
// sequence and that sequence's key range. Inputs are packed back to back, so no padding is computed and none
// can leak into a sequence's softmax. A workgroup serves one (block, head): thread i scores key k0 + i against
// every row of the block, threads 0..ROWS−1 keep each row's running max and sum of exponentials, and thread
// (kq, u) adds probability · V for head-dim unit u over keys kq, kq + BK/UNITS, …, rescaling by
// exp(old max − new max); at the end the key groups' sums are added up per row and normalised.

override UNITS: u32; // headDim / 4, at most BK
override ROWS: u32; // query rows per block, at most MAX_ROWS
override BK: u32 = 64u; // keys per step = threads per workgroup

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> blocks: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

var<workgroup> qs: array<vec4<f32>, ROWS * UNITS>; // the block's queries for this head, pre-multiplied by scale

@compute @workgroup_size(BK)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let idx = wid.x + wid.y * nwg.x;
  let blockIndex = idx / params.nHeads;
  if (blockIndex >= params.nBlocks) { return; }
  let head = idx % params.nHeads;
  let block = blocks[blockIndex];
  let firstRow = block.x;
  let nRows = block.y;
  let kStart = block.z;
  let kEnd = block.z + block.w;
  let width = params.nHeads * UNITS; // vec4 per row of q, of k, of v and of out
  let stride = 3u * width;
  let headAt = head * UNITS;

  for (var i = lid; i < ROWS * UNITS; i += BK) {
    let r = i / UNITS;
    var v = vec4<f32>(0.0);
    if (r < nRows) { v = qkv[(firstRow + r) * stride + headAt + i % UNITS] * params.scale; }
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
    // The previous step's readers of scores and rowAlpha (and, first time, the writers of qs) are done.
    workgroupBarrier();
    var s: array<f32, MAX_ROWS>;
    for (var r = 0u; r < ROWS; r++) { s[r] = 0.0; }
    if (lid < n) {
      let kRow = (k0 + lid) * stride + width + headAt;
      for (var d = 0u; d < UNITS; d++) {
        let k = qkv[kRow + d];
        for (var r = 0u; r < ROWS; r++) { s[r] += dot(qs[r * UNITS + d], k); }
      }
    }
    for (var r = 0u; r < ROWS; r++) {
      scores[r * BK + lid] = select(NO_MAX, s[r], lid < n && r < nRows);
    }
    workgroupBarrier();

    softmax_block(lid, n, &m, &l);
    if (kq < nkq) {
      for (var r = 0u; r < ROWS; r++) { acc[r] *= rowAlpha[r]; }
      for (var j = kq; j < n; j += nkq) {
        let v = qkv[(k0 + j) * stride + 2u * width + headAt + u];
        for (var r = 0u; r < ROWS; r++) { acc[r] = fma(vec4<f32>(scores[r * BK + j]), v, acc[r]); }
      }
    }
  }

  if (lid < ROWS) { rowSum[lid] = l; }
  for (var r = 0u; r < ROWS; r++) {
    let total = sum_key_groups(lid, acc[r], nkq);
    if (lid < UNITS && r < nRows) {
      out[(firstRow + r) * width + headAt + lid] = total / rowSum[r];
    }
  }
}
