// Weight accessor prelude: q8 (src/quant/format.ts): bytes q + 128, four per word (element i in byte i & 3
// of word i >> 2), then one f16 scale per block of 32, two per word, from word ceil(count / 32) · 8.
// value = (byte − 128) · scale. The kernel defines `weight_count()`.
alias WStore = u32;
fn load_w(i: u32) -> f32 {
  let byte = extractBits(w[i >> 2u], (i & 3u) * 8u, 8u);
  let scales = ((weight_count() + 31u) / 32u) * 8u;
  return (f32(byte) - 128.0) * unpack2x16float(w[scales + (i >> 6u)])[(i >> 5u) & 1u];
}
