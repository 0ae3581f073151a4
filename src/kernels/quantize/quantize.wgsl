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
// them). Every integer q is rounded exactly, half up, as the CPU does: the candidate floor(a · (1 / d) + ½)
// is within one of floor(a / d + ½) (or clamped far outside the integer range), and a − q·d, exact in f32
// while it is within 1.5·d (a, an f16 value or t times one, is 0 or at least d / 2t there, so a and q·d lie on
// a grid of 2^-20·d or coarser), compared with ±d/2 corrects it.
// Sums are f32, where the CPU's are f64, so a near tie between two candidates may go the other way; the
// fitted scale is then kept only when its error is below the absmax scale's by more than f32 rounding could
// account for, so each block's squared error is still at most the absmax scale's.
//
// Written for software adapters too (lavapipe runs each invocation as one lane of a CPU vector): every loop
// has constant bounds and unrolls, so the block stays in registers, and nothing branches per element.

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

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> input: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
// [0]: the smallest `slot` of any slice that held an infinity or NaN (0xffffffff while none did).
@group(0) @binding(3) var<storage, read_write> status: array<atomic<u32>>;

// The block as 8 vectors of 4 elements (element 4i + c in values[i][c]); the integers of the trial being
// scored, of the absmax scale and of the fitted scale. Only ever indexed by unrolled loops: registers.
var<private> values: array<vec4<f32>, 8>;
var<private> ints: array<vec4<f32>, 8>;
var<private> absmax_ints: array<vec4<f32>, 8>;
var<private> fitted_ints: array<vec4<f32>, 8>;

// A half's magnitude bits moved to where an f32's go (bits 13..27), as f32: exact, subnormals included (the
// exponent rebiased by 112; a subnormal 0.m · 2^-14 is 1.m · 2^-14 less 2^-14).
fn magnitudes(shifted: vec4<u32>) -> vec4<f32> {
  let normal = bitcast<vec4<f32>>(shifted + vec4(0x38000000u));
  let subnormal = bitcast<vec4<f32>>(shifted + vec4(0x38800000u)) - 6.103515625e-5;
  return select(normal, subnormal, shifted < vec4(0x00800000u));
}

fn magnitude(shifted: u32) -> f32 {
  let normal = bitcast<f32>(shifted + 0x38000000u);
  let subnormal = bitcast<f32>(shifted + 0x38800000u) - 6.103515625e-5;
  return select(normal, subnormal, shifted < 0x00800000u);
}

fn half_to_f32(h: u32) -> f32 {
  let m = magnitude((h & 0x7fffu) << 13u);
  return select(m, -m, (h & 0x8000u) != 0u);
}

// f32 to f16 bits, round to nearest even, as the CPU's f32ToF16Bits (overflow gives infinity).
fn f32_to_half(v: f32) -> u32 {
  let x = bitcast<u32>(v);
  let a = x & 0x7fffffffu;
  // Normal: rebias and round the 13 dropped bits to even (a carry moves into the exponent, as it should).
  let normal = (a - 0x38000000u + 0xfffu + ((a >> 13u) & 1u)) >> 13u;
  // Subnormal: |v| · 2^24 is exact, and round() takes ties to even.
  let subnormal = u32(round(abs(v) * 16777216.0));
  let h = min(select(normal, subnormal, a < 0x38800000u), 0x7c00u);
  return ((x >> 16u) & 0x8000u) | h;
}

// floor(a / d + ½) for d > 0, exactly, from the candidate r rounded (r ≈ a / d, within one).
fn round_half_up(a: vec4<f32>, r: vec4<f32>, d: f32, half_d: f32) -> vec4<f32> {
  let q = floor(r + 0.5);
  let rest = a - q * d;
  return q + select(vec4(0.0), vec4(1.0), rest >= vec4(half_d)) - select(vec4(0.0), vec4(1.0), rest < vec4(-half_d));
}

fn clamp_int(q: vec4<f32>) -> vec4<f32> {
  return clamp(q, vec4(f32(-QMAX - 1)), vec4(f32(QMAX)));
}

// Trial `level`: integers for x_m ↦ −level, their least-squares scale rounded to f16, and its error. Returns
// vec2(bits, error). `lower` is 1 for the elements equal to the extreme that the CPU rounds one lower (see
// LEVEL0_EXTREME_DOWN), else 0. |level · x / x_m| ≤ level, so the candidate needs no clamping.
fn trial(level: f32, extreme: f32, absmax: f32, lower: f32) -> vec2<f32> {
  let inverse = 1.0 / absmax;
  let half_d = 0.5 * absmax;
  let sign = select(-level, level, extreme < 0.0);
  var xq = 0.0;
  var qq = 0.0; // a sum of at most 32 · 130² integers: exact in f32
  for (var i = 0; i < 8; i++) {
    let a = sign * values[i];
    let q = clamp_int(round_half_up(a, a * inverse, absmax, half_d)) - select(vec4(0.0), vec4(lower), values[i] == vec4(extreme));
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

// Quantizes block `b` of the slice (already in `values`; `key` from load_block): writes its integer words
// and returns its scale's bits.
fn quantize_block(b: u32, key: u32) -> u32 {
  let absmax = magnitude(key & 0x0fffe000u);
  // The extreme is the first element of largest magnitude, as in the CPU quantizer.
  let extreme = select(absmax, -absmax, (key & 1u) != 0u);
  let maxq = f32(QMAX);
  // The smallest f16 ≥ absmax / QMAX: h · QMAX is exact in f32, so the candidate is checked both ways.
  var absmax_bits = f32_to_half(absmax / maxq);
  for (var check = 0; check < 2; check++) {
    let up = half_to_f32(absmax_bits) * maxq < absmax;
    let down = absmax_bits > 0u && half_to_f32(absmax_bits - 1u) * maxq >= absmax;
    absmax_bits = select(select(absmax_bits, absmax_bits - 1u, down), absmax_bits + 1u, up);
  }
  // The CPU maps the extreme to round(−t) in f64 as fl(x_m · fl(−t / x_m)), which for t = LEVEL0 = 7.5 lands
  // on either side of −7.5 by the significand of x_m alone: the table says which (a tie nowhere else, as
  // 8.5 clamps to −8 either way and the q8 levels are integers).
  var lower = 0.0;
  if (LEVEL0 != floor(LEVEL0)) {
    let m = (key >> 13u) & 0x7fffu;
    let significand = select(m & 0x3ffu, (m & 0x3ffu) | 0x400u, m >= 0x400u);
    let down = (LEVEL0_EXTREME_DOWN[significand >> 5u] >> (significand & 31u)) & 1u;
    lower = select(0.0, 1.0, down == 1u && floor(0.5 - LEVEL0) > f32(-QMAX - 1));
  }
  // Strictly smaller wins, the first on a tie; a trial whose error is not a number never does.
  var best = vec2<f32>(0.0, 3.0e38);
  let first = trial(LEVEL0, extreme, absmax, lower);
  if (first.y < best.y) { best = first; }
  let second = trial(LEVEL1, extreme, absmax, 0.0);
  if (second.y < best.y) { best = second; }
  let third = trial(LEVEL2, extreme, absmax, 0.0);
  if (third.y < best.y) { best = third; }
  let fitted_bits = u32(best.x);

  // The absmax scale, q = round(x / d): |x| ≤ absmax ≤ d · QMAX, so no clamping.
  let absmax_scale = half_to_f32(absmax_bits);
  let absmax_inverse = 1.0 / absmax_scale;
  let absmax_half = 0.5 * absmax_scale;
  var absmax_error = 0.0;
  for (var i = 0; i < 8; i++) {
    let q = round_half_up(values[i], values[i] * absmax_inverse, absmax_scale, absmax_half);
    absmax_ints[i] = q;
    let difference = values[i] - q * absmax_scale;
    absmax_error += dot(difference, difference);
  }
  // The fitted scale (either sign), q = round(x / scale) clamped; the candidate is clamped first, to keep
  // |2q ± 1| small where the scale is tiny.
  let fitted = half_to_f32(fitted_bits);
  let fitted_d = abs(fitted);
  let fitted_inverse = 1.0 / fitted_d;
  let fitted_half = 0.5 * fitted_d;
  let fitted_sign = select(1.0, -1.0, fitted < 0.0);
  let bound = f32(QMAX + 3);
  var fitted_error = 0.0;
  for (var i = 0; i < 8; i++) {
    let a = fitted_sign * values[i];
    let q = clamp_int(round_half_up(a, clamp(a * fitted_inverse, vec4(-bound), vec4(bound)), fitted_d, fitted_half));
    fitted_ints[i] = q;
    let difference = values[i] - q * fitted;
    fitted_error += dot(difference, difference);
  }
  let magnitude = fitted_bits & 0x7fffu;
  let use_fitted = magnitude != 0u && magnitude < 0x7c00u && fitted_error < absmax_error * SAFE_MARGIN;
  let zero = absmax == 0.0;

  // q + offset is the low bits of q + 2^23 + offset as an f32.
  let offset = vec4(8388608.0 + f32(QMAX + 1));
  let mask = vec4(u32(2 * QMAX + 1));
  let shifts = vec4(0u, 8u, 16u, 24u);
  for (var i = 0; i < 8; i++) {
    let q = select(select(absmax_ints[i], fitted_ints[i], use_fitted), vec4(0.0), zero);
    ints[i] = q;
  }
  if (PER_WORD == 8u) {
    // q4: elements 0..3 of a word in the low nibbles of its bytes, 4..7 in the high ones.
    for (var w = 0u; w < 4u; w++) {
      let low = (bitcast<vec4<u32>>(ints[2u * w] + offset) & mask) << shifts;
      let high = (bitcast<vec4<u32>>(ints[2u * w + 1u] + offset) & mask) << (shifts + vec4(4u));
      out[params.intBase + b * 4u + w] = low.x | low.y | low.z | low.w | high.x | high.y | high.z | high.w;
    }
  } else {
    for (var w = 0u; w < 8u; w++) {
      let bytes = (bitcast<vec4<u32>>(ints[w] + offset) & mask) << shifts;
      out[params.intBase + b * 8u + w] = bytes.x | bytes.y | bytes.z | bytes.w;
    }
  }
  return select(select(absmax_bits, fitted_bits, use_fitted), 0u, zero);
}

// Loads block `b` of the slice into `values`, zero past the end, and returns its key: the largest over its
// elements of (magnitude bits << 13) | (31 − index) << 1 | sign, so the first element of largest magnitude
// and its sign; a magnitude from 0x7c00 up (infinity or NaN) sets bits from 0x0f800000 up.
fn load_block(b: u32) -> u32 {
  var key = 0u;
  let last = (params.count - 1u) / 2u;
  let full = b * BLOCK + BLOCK <= params.count;
  for (var i = 0u; i < 8u; i++) {
    let at = b * BLOCK + 4u * i;
    var words = vec2(input[min(at / 2u, last)], input[min(at / 2u + 1u, last)]);
    if (!full) {
      words = select(vec2(0u), words, vec2(at, at + 2u) < vec2(params.count));
      words.x = select(words.x & 0xffffu, words.x, at + 1u < params.count);
      words.y = select(words.y & 0xffffu, words.y, at + 3u < params.count);
    }
    let raw = vec4(words.x << 16u, words.x, words.y << 16u, words.y);
    let shifted = (raw >> vec4(3u)) & vec4(0x0fffe000u);
    let signs = raw & vec4(0x80000000u);
    values[i] = bitcast<vec4<f32>>(bitcast<vec4<u32>>(magnitudes(shifted)) | signs);
    let keys = shifted | vec4((31u - 4u * i) << 1u, (30u - 4u * i) << 1u, (29u - 4u * i) << 1u, (28u - 4u * i) << 1u) | (signs >> vec4(31u));
    key = max(key, max(max(keys.x, keys.y), max(keys.z, keys.w)));
  }
  return key;
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
    let key = load_block(b);
    if (key >= 0x0f800000u) {
      atomicMin(&status[0], params.slot);
      return;
    }
    scales |= quantize_block(b, key) << (16u * part);
  }
  out[params.scaleBase + pair] = scales;
}
