// Weight accessor prelude: q4 blocks of 32 flat elements, 5 u32 each (src/quant/format.ts): 4 words of
// nibbles q + 8 (low nibble first), then the f16 scale in the low half of the 5th. value = (nibble − 8) · scale.
alias WStore = u32;
fn load_w(i: u32) -> f32 {
  let base = (i >> 5u) * 5u;
  let j = i & 31u;
  let nibble = extractBits(w[base + (j >> 3u)], (j & 7u) * 4u, 4u);
  return (f32(nibble) - 8.0) * unpack2x16float(w[base + 4u]).x;
}
