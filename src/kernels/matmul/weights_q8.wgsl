// Weight accessor prelude: q8 blocks of 32 flat elements, 9 u32 each (src/quant/format.ts): 8 words of
// int8, then the f16 scale in the low half of the 9th. Dequantized in registers: value = int8 · scale.
alias WStore = u32;
fn load_w(i: u32) -> f32 {
  let base = (i >> 5u) * 9u;
  let j = i & 31u;
  // extractBits on i32 sign-extends the byte.
  let q = extractBits(bitcast<i32>(w[base + (j >> 2u)]), (j & 3u) * 8u, 8u);
  return f32(q) * unpack2x16float(w[base + 8u]).x;
}
