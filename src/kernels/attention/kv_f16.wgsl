// KV cache accessor prelude: native f16 (device feature shader-f16), 4 dims per vec4<f16>; the same bytes as
// the packed form. Arithmetic stays f32.
enable f16;
alias KvUnit = vec4<f16>;
fn kv_load(u: KvUnit) -> vec4<f32> { return vec4<f32>(u); }
fn kv_pack(v: vec4<f32>) -> KvUnit { return vec4<f16>(v); }
