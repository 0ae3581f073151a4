// Quantizes f16 weights (raw halves, two per u32, element 2i in the low half) to q8 or q4 blocks of 32
// (layout in src/quant/format.ts), as the CPU quantizer (src/quant/quantize.ts) does: three trial scales
// that map the block's extreme to about −t, each refitted by least squares and rounded to f16, the best
// competing with the absmax scale (absmax / MAXQ rounded up to f16) on their exact errors.
//
// One thread per pair of blocks: it writes the pair's integer words and its one scale word whole, so no two
// threads share a word. The input is one slice of the tensor staged from word 0, `count` elements starting on
// a multiple of 64 of the tensor; `intBase` and `scaleBase` are the words of the destination where the slice's
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

// The block as 8 vectors of 4 elements (element 4i + c in values[i][c]), and the integers being scored. Loops
// over them are 8 steps with constant bounds, which compilers unroll into registers.
var<private> values: array<vec4<f32>, 8>;
var<private> ints: array<vec4<f32>, 8>;

fn halves_to_f32(h: vec4<u32>) -> vec4<f32> {
  let e = (h >> vec4(10u)) & vec4(0x1fu);
  let m = h & vec4(0x3ffu);
  let subnormal = vec4<f32>(m) * 5.9604644775390625e-8; // m · 2^-24
  let normal = bitcast<vec4<f32>>(((e + vec4(112u)) << vec4(23u)) | (m << vec4(13u)));
  let magnitude = select(subnormal, normal, e != vec4(0u));
  return select(magnitude, -magnitude, (h & vec4(0x8000u)) != vec4(0u));
}

fn half_to_f32(h: u32) -> f32 {
  return halves_to_f32(vec4(h)).x;
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
fn round_half_up(a: vec4<f32>, d: f32, inverse: f32) -> vec4<f32> {
  let bound = f32(QMAX + 3);
  var q = floor(clamp(a * inverse, vec4(-bound), vec4(bound)) + 0.5);
  q += select(vec4(0.0), vec4(1.0), a >= (q + 0.5) * d);
  q -= select(vec4(0.0), vec4(1.0), a < (q - 0.5) * d);
  return clamp(q, vec4(f32(-QMAX - 1)), vec4(f32(QMAX)));
}

// The block's integers for `scale` (≠ 0) into `ints`, and the squared error they leave.
fn fit(scale: f32) -> f32 {
  let d = abs(scale);
  let inverse = 1.0 / d;
  let sign = select(1.0, -1.0, scale < 0.0);
  var error = 0.0;
  for (var i = 0; i < 8; i++) {
    let q = round_half_up(sign * values[i], d, inverse);
    ints[i] = q;
    let difference = values[i] - q * scale;
    error += dot(difference, difference);
  }
  return error;
}

// Trial `level`: integers for x_m ↦ −level, their least-squares scale rounded to f16, and its error. Returns
// vec2(bits, error).
// `extreme_q` is the integer the CPU gives the extreme itself (see LEVEL0_EXTREME_DOWN).
fn trial(level: f32, extreme: f32, extreme_q: f32) -> vec2<f32> {
  let d = abs(extreme);
  let inverse = 1.0 / d;
  let sign = select(-level, level, extreme < 0.0);
  var xq = 0.0;
  var qq = 0.0; // a sum of at most 32 · 130² integers: exact in f32
  for (var i = 0; i < 8; i++) {
    let q = select(round_half_up(sign * values[i], d, inverse), vec4(extreme_q), values[i] == vec4(extreme));
    ints[i] = q;
    xq += dot(values[i], q);
    qq += dot(q, q);
  }
  let bits = f32_to_half(xq / qq);
  let scale = half_to_f32(bits);
  var error = 0.0;
  for (var i = 0; i < 8; i++) {
    let difference = values[i] - ints[i] * scale;
    error += dot(difference, difference);
  }
  return vec2<f32>(f32(bits), error);
}

// Quantizes block `b` of the slice (already in `values`): writes its integer words and returns its scale's bits.
fn quantize_block(b: u32) -> u32 {
  var absmax = 0.0;
  for (var i = 0; i < 8; i++) {
    let m = abs(values[i]);
    absmax = max(absmax, max(max(m.x, m.y), max(m.z, m.w)));
  }
  // The extreme is the first element of largest magnitude, as in the CPU quantizer.
  var extreme = 0.0;
  for (var i = 7; i >= 0; i--) {
    let v = values[i];
    let m = abs(v) == vec4(absmax);
    if (m.w) { extreme = v.w; }
    if (m.z) { extreme = v.z; }
    if (m.y) { extreme = v.y; }
    if (m.x) { extreme = v.x; }
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
    // The CPU maps the extreme to round(−t) in f64 as fl(x_m · fl(−t / x_m)), which for t = LEVEL0 = 7.5 lands
    // on either side of −7.5 by the significand of x_m alone: the table says which (a tie nowhere else, as
    // 8.5 clamps to −8 either way and the q8 levels are integers).
    let m = f32_to_half(abs(extreme));
    let significand = select(m & 0x3ffu, (m & 0x3ffu) | 0x400u, m >= 0x400u);
    let down = (LEVEL0_EXTREME_DOWN[significand >> 5u] >> (significand & 31u)) & 1u;
    for (var t = 0; t < 3; t++) {
      let level = select(select(LEVEL2, LEVEL1, t == 1), LEVEL0, t == 0);
      var extreme_q = clamp(floor(0.5 - level), f32(-QMAX - 1), f32(QMAX));
      if (t == 0 && down == 1u) { extreme_q = max(extreme_q - 1.0, f32(-QMAX - 1)); }
      let candidate = trial(level, extreme, extreme_q);
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
    for (var i = 0; i < 8; i++) { ints[i] = vec4(0.0); }
  }
  let offset = vec4(QMAX + 1);
  let shifts = vec4(0u, 8u, 16u, 24u);
  if (PER_WORD == 8u) {
    // q4: elements 0..3 of a word in the low nibbles of its bytes, 4..7 in the high ones.
    for (var w = 0u; w < 4u; w++) {
      let low = vec4<u32>(vec4<i32>(ints[2u * w]) + offset) << shifts;
      let high = vec4<u32>(vec4<i32>(ints[2u * w + 1u]) + offset) << (shifts + vec4(4u));
      out[params.intBase + b * 4u + w] = low.x | low.y | low.z | low.w | high.x | high.y | high.z | high.w;
    }
  } else {
    for (var w = 0u; w < 8u; w++) {
      let bytes = vec4<u32>(vec4<i32>(ints[w]) + offset) << shifts;
      out[params.intBase + b * 8u + w] = bytes.x | bytes.y | bytes.z | bytes.w;
    }
  }
  return bits;
}

// Loads block `b` of the slice into `values`, zero past the end; false if it holds an infinity or NaN.
fn load_block(b: u32) -> bool {
  var finite = true;
  let last = (params.count - 1u) / 2u;
  for (var i = 0u; i < 8u; i++) {
    let at = b * BLOCK + 4u * i;
    let index = vec4(at) + vec4(0u, 1u, 2u, 3u);
    let words = vec2(input[min(at / 2u, last)], input[min(at / 2u + 1u, last)]);
    let h = select(vec4(0u), (vec4(words.x, words.x, words.y, words.y) >> vec4(0u, 16u, 0u, 16u)) & vec4(0xffffu), index < vec4(params.count));
    finite = finite && all((h & vec4(0x7c00u)) != vec4(0x7c00u));
    values[i] = halves_to_f32(h);
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
