// KV cache accessor prelude: f32 entries, one vec4 (4 head dims) per load or store.
alias KvUnit = vec4<f32>;
fn kv_load(u: KvUnit) -> vec4<f32> { return u; }
fn kv_pack(v: vec4<f32>) -> KvUnit { return v; }
