// The online softmax (flash style) both attention kernels run over blocks of BK keys: the workgroup memory it
// works in and its two steps. A kernel declares UNITS, ROWS and BK; thread i scores key k0 + i against every
// row into `scores` (NO_MAX where masked), then calls softmax_block, then adds probability · V into its
// accumulators after rescaling them by rowAlpha; at the end sum_key_groups adds up each row's accumulators.

const MAX_ROWS: u32 = 16u;
// Below any real score, yet finite: marks masked scores, and exp(NO_MAX − m) is 0 for any real m.
const NO_MAX: f32 = -0x1.fffffep+127f; // -FLT_MAX

var<workgroup> scores: array<f32, ROWS * BK>; // the block's scores, then its probabilities
var<workgroup> rowMax: array<f32, ROWS>;
var<workgroup> rowAlpha: array<f32, ROWS>; // exp(previous max − this block's max)
var<workgroup> rowSum: array<f32, ROWS>;
var<workgroup> partial: array<vec4<f32>, BK>; // one row's sums from every key group, added up at the end

// After the block's `n` scores are written (and a barrier): threads 0..ROWS−1, one per row, move the row's
// running max `m` to the block's, every thread turns the scores into probabilities against it, and the row's
// thread rescales its running sum of exponentials `l` and adds the block's.
fn softmax_block(lid: u32, n: u32, m: ptr<function, f32>, l: ptr<function, f32>) {
  if (lid < ROWS) {
    var mNew = *m;
    for (var j = 0u; j < n; j++) { mNew = max(mNew, scores[lid * BK + j]); }
    rowAlpha[lid] = exp(*m - mNew);
    rowMax[lid] = mNew;
    *m = mNew;
  }
  workgroupBarrier();

  for (var r = 0u; r < ROWS; r++) {
    let i = r * BK + lid;
    let sc = scores[i];
    scores[i] = select(0.0, exp(sc - rowMax[r]), sc > NO_MAX);
  }
  workgroupBarrier();

  if (lid < ROWS) {
    var sum = 0.0;
    for (var j = 0u; j < n; j++) { sum += scores[lid * BK + j]; }
    *l = fma(*l, rowAlpha[lid], sum);
  }
}

// One row's output unit `lid` (for lid < UNITS): the sum of what the nkq key groups accumulated for it, each
// thread giving its own accumulator `value`. Every thread must call it (it holds barriers).
fn sum_key_groups(lid: u32, value: vec4<f32>, nkq: u32) -> vec4<f32> {
  workgroupBarrier();
  partial[lid] = value;
  workgroupBarrier();
  var total = vec4<f32>(0.0);
  if (lid < UNITS) {
    for (var j = 0u; j < nkq; j++) { total += partial[j * UNITS + lid]; }
  }
  return total;
}
