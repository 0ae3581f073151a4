// KV cache accessor prelude: f16 halves packed two per u32 (dim 2i in the low half), 4 dims per vec2<u32>.
// Needs no shader-f16. Values beyond ±65504 do not fit f16; keys and values of real models stay far below.
alias KvUnit = vec2<u32>;
fn kv_load(u: KvUnit) -> vec4<f32> { return vec4<f32>(unpack2x16float(u.x), unpack2x16float(u.y)); }
fn kv_pack(v: vec4<f32>) -> KvUnit { return vec2<u32>(pack2x16float(v.xy), pack2x16float(v.zw)); }
