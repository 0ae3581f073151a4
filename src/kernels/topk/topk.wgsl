// Top-K of one row of logits: the K largest values, best first, ties to the lower index. NaN ranks above
// every number, so a row holding NaN or +Infinity has a non-finite best value: that flags a broken row.
// Two dispatches of this shader:
//   stage 1 (MERGE = false): workgroup b takes logits [b·BLOCK, (b+1)·BLOCK) and writes its best K entries,
//     sorted, to scratch[b·K, (b+1)·K) (workgroups numbered linearly over a grid that may be folded to 2-D);
//   stage 2 (MERGE = true): one workgroup takes those B·K entries and writes the best K to values/indices.
//
// An entry is vec2(key, index) with key an order-preserving u32 image of the f32 value. Comparing integer
// keys rather than floats keeps the order exact where drivers flush subnormals, and (with -0 mapped to +0)
// gives one total order on entries: the result is the same whatever order entries are visited in.
// Stage 2 reads each winner's value back from logits, so values are the input's bits (-0 stays -0).
//
// Each workgroup keeps its best P (K rounded up to a power of two) sorted in buf[0, P). Entries that beat
// the current K-th best are appended to buf[P, CAP) with an atomic counter; once the next sweep could
// overflow, or the input ends, the buffer is sorted in runs of P and the runs are merged pairwise (keeping
// the better P of each pair) until run 0 holds the best P again. On random logits few entries beat the
// K-th best after the first merge, so most of the work is one read and one comparison per logit.

override WG: u32 = 256u;
// Entries in the workgroup buffer: a power of two ≥ 2 · 256 + WG (best P ≤ 256 plus at least one sweep).
override CAP: u32 = 1024u;
// Logits per stage-1 workgroup.
override BLOCK: u32 = 4096u;
override MERGE: bool = false;

const NONE: u32 = 0xffffffffu;
// Ranks below every real entry: key 0 is below the key of -Infinity (0x007fffff).
const EMPTY = vec2<u32>(0u, NONE);

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> scratch: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> values: array<f32>;
@group(0) @binding(4) var<storage, read_write> indices: array<u32>;

var<workgroup> buf: array<vec2<u32>, CAP>;
var<workgroup> count: atomic<u32>;
var<workgroup> countCopy: u32;

// Whether entry a ranks before entry b: a larger key, or an equal key at a lower index.
fn before(a: vec2<u32>, b: vec2<u32>) -> bool {
  return a.x > b.x || (a.x == b.x && a.y < b.y);
}

// The entry for logits[i]; every NaN gets the largest key, above +Infinity's (0xff800000).
fn logitEntry(i: u32) -> vec2<u32> {
  var bits = bitcast<u32>(logits[i]);
  if ((bits & 0x7fffffffu) > 0x7f800000u) { return vec2<u32>(0xffffffffu, i); }
  if (bits == 0x80000000u) { bits = 0u; } // -0 ties with +0, as in f32 comparison
  // Negative values: flip all bits (more negative → smaller); non-negative: set the sign bit.
  return vec2<u32>(select(bits | 0x80000000u, ~bits, (bits & 0x80000000u) != 0u), i);
}

// Puts the better of buf[i] and buf[j] at i.
fn order(i: u32, j: u32) {
  let a = buf[i];
  let b = buf[j];
  if (before(b, a)) {
    buf[i] = b;
    buf[j] = a;
  }
}

// Leaves the best P entries of buf, sorted, in buf[0, P). First each run of P is sorted best-first by a
// bitonic network with every comparator facing the same way (each stage starts by comparing mirrored
// pairs); then runs are merged pairwise: with A and B sorted, max(A[t], B[P-1-t]) is a bitonic sequence
// holding the best P of both, which one bitonic merge sorts. Called in uniform control flow; P is uniform.
fn sortReduce(lid: u32, P: u32) {
  let pairs = CAP / 2u;
  for (var size = 2u; size <= P; size *= 2u) {
    let half = size / 2u;
    for (var t = lid; t < pairs; t += WG) {
      let base = (t / half) * size;
      let off = t % half;
      order(base + off, base + size - 1u - off);
    }
    workgroupBarrier();
    for (var s = half / 2u; s > 0u; s /= 2u) {
      for (var t = lid; t < pairs; t += WG) {
        let i = 2u * s * (t / s) + t % s;
        order(i, i + s);
      }
      workgroupBarrier();
    }
  }
  // Runs at multiples of 2·width take the better P of themselves and the run `width` after them.
  for (var width = P; width < CAP; width *= 2u) {
    let merged = CAP / (2u * width);
    for (var t = lid; t < merged * P; t += WG) {
      let a = (t / P) * 2u * width + t % P;
      let b = (t / P) * 2u * width + width + P - 1u - t % P;
      if (before(buf[b], buf[a])) { buf[a] = buf[b]; }
    }
    workgroupBarrier();
    let halfP = P / 2u;
    for (var s = halfP; s > 0u; s /= 2u) {
      for (var t = lid; t < merged * halfP; t += WG) {
        let u = t % halfP;
        let i = (t / halfP) * 2u * width + 2u * s * (u / s) + u % s;
        order(i, i + s);
      }
      workgroupBarrier();
    }
  }
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let V = params.V;
  let K = params.K;
  var P = 1u;
  while (P < K) { P *= 2u; }
  let blocks = (V + BLOCK - 1u) / BLOCK;
  let block = wid.x + wid.y * nwg.x;
  if (block >= select(blocks, 1u, MERGE)) { return; } // the same for the whole workgroup

  // Stage 1 reads its slice of the logits; stage 2 reads the blocks' lists rank by rank (every block's
  // best, then every block's second best, ...), so the K-th best rises early and most entries fail it.
  var start = block * BLOCK;
  var end = min(start + BLOCK, V);
  if (MERGE) {
    start = 0u;
    end = blocks * K;
  }

  for (var t = lid; t < CAP; t += WG) { buf[t] = EMPTY; }
  if (lid == 0u) { atomicStore(&count, 0u); }
  workgroupBarrier();

  var kth = EMPTY;
  let sweeps = (end - start + WG - 1u) / WG;
  for (var sweep = 0u; sweep < sweeps; sweep++) {
    let j = start + sweep * WG + lid;
    if (j < end) {
      var e: vec2<u32>;
      if (MERGE) { e = scratch[(j % blocks) * K + j / blocks]; } else { e = logitEntry(j); }
      if (before(e, kth)) { buf[P + atomicAdd(&count, 1u)] = e; }
    }
    workgroupBarrier();
    if (lid == 0u) { countCopy = atomicLoad(&count); }
    let n = workgroupUniformLoad(&countCopy);
    if (n > CAP - P - WG || (sweep + 1u == sweeps && n > 0u)) {
      sortReduce(lid, P);
      kth = buf[K - 1u];
      for (var t = P + lid; t < CAP; t += WG) { buf[t] = EMPTY; }
      if (lid == 0u) { atomicStore(&count, 0u); }
      workgroupBarrier();
    }
  }

  for (var r = lid; r < K; r += WG) {
    let e = buf[r];
    if (!MERGE) {
      scratch[block * K + r] = e;
    } else if (e.y == NONE) {
      // Fewer than K logits (the CPU keeps K ≤ V, so only a bad K): no candidate, and logits[NONE] is never read. -Infinity's bits go through a
      // var because a constant expression may not evaluate to an infinity.
      var noValue = 0xff800000u;
      values[r] = bitcast<f32>(noValue);
      indices[r] = NONE;
    } else {
      values[r] = logits[e.y];
      indices[r] = e.y;
    }
  }
}
