// Weight accessor prelude: f32 storage. The kernel declares `w: array<WStore>`; `load_w` takes a flat index.
alias WStore = f32;
fn load_w(i: u32) -> f32 { return w[i]; }
