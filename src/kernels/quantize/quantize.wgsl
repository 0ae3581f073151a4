// Quantizes f16 weights (raw halves, two per u32, element 2i in the low half) to q8 or q4 blocks of 32
// (layout in src/quant/format.ts), as the CPU quantizer (src/quant/quantize.ts) does: three trial scales
// that map the block's extreme to about −t, each refitted by least squares and rounded to f16, the best
// competing with the absmax scale (absmax / MAXQ rounded up to f16) on their exact errors.
//
// One thread per pair of blocks: it writes the pair's integer words and its one scale word whole, so no two
// threads share a word. The input is one slice of the tensor, elements `first` .. `first + count` with
// `first` a multiple of 64 (the input binding starts at `first`); `intBase` and `scaleBase` are the words of the destination where the slice's
// first block's integers and its first scale word go.
//
// Without shader-f16, halves are converted by hand (exact, subnormals included: unpack2x16float may flush
// them). Every integer q is rounded exactly, half up, as the CPU does, by checking the candidate against
// (q ± ½)·d, which f32 holds exactly (|2q ± 1| < 2^9, d an f16). Sums are f32, where the CPU's are f64, so a
// near tie between two candidates may go the other way; the fitted scale is then kept only when its error
// is below the absmax scale's by more than f32 rounding could account for, so each block's squared error is
// still at most the absmax scale's.

override WG: u32 = 64u;
// 127 (q8) or 7 (q4): the largest integer, and with QMIN = −QMAX − 1 the smallest.
override QMAX: i32 = 127;
// 8 elements per word (q4, nibbles) or 4 (q8, bytes).
override PER_WORD: u32 = 4u;
// The trials' levels t (the extreme maps to about −t).
override LEVEL0: f32 = 126.0;
override LEVEL1: f32 = 128.0;
override LEVEL2: f32 = 130.0;

const BLOCK: u32 = 32u;
// 32 f32 squared errors carry at most 32 · 2^-24 relative error each way; 2^-16 leaves room for both.
const SAFE_MARGIN: f32 = 0.9999847412109375;
const NO_TENSOR: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> input: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
// [0]: the smallest `slot` of any slice that held an infinity or NaN (NO_TENSOR while none did).
@group(0) @binding(3) var<storage, read_write> status: array<atomic<u32>>;

var<private> values: array<f32, 32>;
var<private> ints: array<i32, 32>;

fn half_to_f32(h: u32) -> f32 {
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  var magnitude = f32(m) * 5.9604644775390625e-8; // subnormal: m · 2^-24
  if (e != 0u) {
    magnitude = bitcast<f32>(((e + 112u) << 23u) | (m << 13u));
  }
  return select(magnitude, -magnitude, (h & 0x8000u) != 0u);
}

// f32 to f16 bits, round to nearest even, as the CPU's f32ToF16Bits (overflow gives infinity).
fn f32_to_half(v: f32) -> u32 {
  let x = bitcast<u32>(v);
  let sign = (x >> 16u) & 0x8000u;
  let e = i32((x >> 23u) & 0xffu) - 112;
  var mant = x & 0x7fffffu;
  if (e >= 31) { return sign | 0x7c00u; }
  if (e <= 0) {
    if (e < -10) { return sign; }
    mant = mant | 0x800000u;
    let shift = u32(14 - e);
    var h = mant >> shift;
    let rest = mant & ((1u << shift) - 1u);
    let mid = 1u << (shift - 1u);
    if (rest > mid || (rest == mid && (h & 1u) == 1u)) { h += 1u; }
    return sign | h;
  }
  var h = (u32(e) << 10u) | (mant >> 13u);
  let rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u) == 1u)) { h += 1u; }
  return sign | h;
}

// floor(a / d + ½) for d > 0, exactly, clamped to [QMIN, QMAX]; `inverse` ≈ 1 / d gives the candidate.
fn round_half_up(a: f32, d: f32, inverse: f32) -> i32 {
  let lo = f32(-QMAX - 3);
  let hi = f32(QMAX + 3);
  var q = floor(clamp(a * inverse, lo, hi) + 0.5);
  if (a >= (q + 0.5) * d) {
    q += 1.0;
  } else if (a < (q - 0.5) * d) {
    q -= 1.0;
  }
  return clamp(i32(q), -QMAX - 1, QMAX);
}

// The block's integers for `scale` (≠ 0) into `ints`, and the squared error they leave.
fn fit(scale: f32) -> f32 {
  let d = abs(scale);
  let inverse = 1.0 / d;
  let sign = select(1.0, -1.0, scale < 0.0);
  var error = 0.0;
  for (var i = 0u; i < BLOCK; i++) {
    let v = values[i];
    let q = round_half_up(sign * v, d, inverse);
    ints[i] = q;
    let difference = v - f32(q) * scale;
    error += difference * difference;
  }
  return error;
}

// Trial `level`: integers for x_m ↦ −level, their least-squares scale rounded to f16, and its error. Returns
// vec2(bits, error).
fn trial(level: f32, extreme: f32) -> vec2<f32> {
  let d = abs(extreme);
  let inverse = 1.0 / d;
  let sign = select(-level, level, extreme < 0.0);
  var xq = 0.0;
  var qq = 0;
  for (var i = 0u; i < BLOCK; i++) {
    let v = values[i];
    let q = round_half_up(sign * v, d, inverse);
    ints[i] = q;
    xq += v * f32(q);
    qq += q * q;
  }
  let bits = f32_to_half(xq / f32(qq));
  let scale = half_to_f32(bits);
  var error = 0.0;
  for (var i = 0u; i < BLOCK; i++) {
    let difference = values[i] - f32(ints[i]) * scale;
    error += difference * difference;
  }
  return vec2<f32>(f32(bits), error);
}

// Quantizes block `b` of the slice (already in `values`): writes its integer words and returns its scale's bits.
fn quantize_block(b: u32) -> u32 {
  var absmax = 0.0;
  var extreme = 0.0;
  for (var i = 0u; i < BLOCK; i++) {
    let v = values[i];
    if (abs(v) > absmax) {
      absmax = abs(v);
      extreme = v;
    }
  }
  let maxq = f32(QMAX);
  // The smallest f16 ≥ absmax / QMAX: h · QMAX is exact in f32, so the candidate is checked both ways.
  var absmax_bits = f32_to_half(absmax / maxq);
  for (var check = 0; check < 2; check++) {
    if (half_to_f32(absmax_bits) * maxq < absmax) {
      absmax_bits += 1u;
    } else if (absmax_bits > 0u && half_to_f32(absmax_bits - 1u) * maxq >= absmax) {
      absmax_bits -= 1u;
    }
  }
  var bits = 0u;
  if (absmax > 0.0) {
    // Strictly smaller wins, the first on a tie; a trial whose error is not a number never does.
    var best = vec2<f32>(0.0, 3.0e38);
    for (var t = 0; t < 3; t++) {
      let candidate = trial(select(select(LEVEL2, LEVEL1, t == 1), LEVEL0, t == 0), extreme);
      if (candidate.y < best.y) { best = candidate; }
    }
    let fitted_bits = u32(best.x);
    let absmax_error = fit(half_to_f32(absmax_bits));
    bits = absmax_bits;
    let magnitude = fitted_bits & 0x7fffu;
    if (magnitude != 0u && magnitude < 0x7c00u) {
      let fitted_error = fit(half_to_f32(fitted_bits));
      if (fitted_error < absmax_error * SAFE_MARGIN) {
        bits = fitted_bits;
      } else {
        _ = fit(half_to_f32(absmax_bits));
      }
    }
  } else {
    for (var i = 0u; i < BLOCK; i++) { ints[i] = 0; }
  }
  let words = BLOCK / PER_WORD;
  let shift = 32u / PER_WORD;
  let offset = QMAX + 1;
  for (var w = 0u; w < words; w++) {
    var word = 0u;
    for (var j = 0u; j < PER_WORD; j++) {
      // q4 puts elements 0..3 of a word in the low nibbles of its bytes, 4..7 in the high ones.
      let at = select(8u * j, 8u * (j & 3u) + 4u * (j >> 2u), PER_WORD == 8u);
      word |= u32(ints[w * PER_WORD + j] + offset) << at;
    }
    out[params.intBase + b * words + w] = word;
  }
  return bits;
}

// Loads block `b` of the slice into `values`, zero-padded past the end; false if it holds an infinity or NaN.
fn load_block(b: u32) -> bool {
  var finite = true;
  for (var k = 0u; k < BLOCK / 2u; k++) {
    let at = b * BLOCK + 2u * k;
    var pair = 0u;
    if (at < params.count) {
      pair = input[at / 2u];
    }
    if (at + 1u >= params.count) {
      pair &= 0xffffu;
    }
    let lo = pair & 0xffffu;
    let hi = pair >> 16u;
    finite = finite && (lo & 0x7c00u) != 0x7c00u && (hi & 0x7c00u) != 0x7c00u;
    values[2u * k] = half_to_f32(lo);
    values[2u * k + 1u] = half_to_f32(hi);
  }
  return finite;
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let pair = (wid.x + wid.y * nwg.x) * WG + lid;
  let blocks = (params.count + BLOCK - 1u) / BLOCK;
  if (2u * pair >= blocks) { return; }
  var scales = 0u;
  for (var part = 0u; part < 2u; part++) {
    let b = 2u * pair + part;
    if (b >= blocks) { break; }
    if (!load_block(b)) {
      atomicMin(&status[0], params.slot);
      return;
    }
    scales |= quantize_block(b) << (16u * part);
  }
  out[params.scaleBase + pair] = scales;
}
