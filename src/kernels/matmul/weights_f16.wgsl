// Weight accessor prelude: native f16 storage (device feature shader-f16), widened to f32 for arithmetic.
enable f16;
alias WStore = f16;
fn load_w(i: u32) -> f32 { return f32(w[i]); }
