// Weight accessor prelude: q4 (src/quant/format.ts): nibbles q + 8, word i >> 3 holding elements 8w..8w+3 in
// the low nibbles of its bytes and 8w+4..8w+7 in the high ones, then one f16 scale per block of 32, two per
// word, from word ceil(count / 32) · 4. value = (nibble − 8) · scale. The kernel defines `weight_count()`.
alias WStore = u32;
fn load_w(i: u32) -> f32 {
  let j = i & 7u;
  let nibble = extractBits(w[i >> 3u], (j & 3u) * 8u + (j >> 2u) * 4u, 4u);
  let scales = ((weight_count() + 31u) / 32u) * 4u;
  return (f32(nibble) - 8.0) * unpack2x16float(w[scales + (i >> 6u)])[(i >> 5u) & 1u];
}
