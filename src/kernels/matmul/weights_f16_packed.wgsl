// Weight accessor prelude: f16 halves packed two per u32 (element 2i in the low half). Needs no shader-f16.
alias WStore = u32;
fn load_w(i: u32) -> f32 { return unpack2x16float(w[i >> 1u])[i & 1u]; }
