// Rotary position embedding on the fused QKV projection, writing rotated queries to q and the token's K
// (rotated) and V (as is) into the KV cache at positions pos..pos+T−1. One workgroup per (token, head) over
// the nHeads query, nKvHeads key and nKvHeads value heads of each qkv row; threads stride over headDim.
// cos/sin come from a table computed on the CPU in f64 (WGSL sin/cos are inexact for large angles):
// table[(p·rotaryDim/2 + i)·2 + {0: cos, 1: sin}]. Pairs (x0, x1) become (x0·cos − x1·sin, x1·cos + x0·sin):
// pairs (i, i + rotaryDim/2), Hugging Face's rotate-half layout; dims ≥ rotaryDim (partial rotary) pass
// through. HAS_QK_NORM applies a per-head RMSNorm (Qwen3's q_norm / k_norm) before the rotation.
// Cache layout: [nKvHeads, maxContext, headDim], stored through the KV prelude (KvUnit, kv_pack) 4 dims at a
// time, so each thread produces 4 consecutive dims. Workgroups are numbered linearly (grid may be 2-D).

override WG: u32 = 64u; // a power of two, for the tree reduction
override HAS_QK_NORM: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read> qNorm: array<f32>;
@group(0) @binding(4) var<storage, read> kNorm: array<f32>;
@group(0) @binding(5) var<storage, read_write> q: array<f32>;
@group(0) @binding(6) var<storage, read_write> kCache: array<KvUnit>;
@group(0) @binding(7) var<storage, read_write> vCache: array<KvUnit>;

var<workgroup> partial: array<f32, WG>;

// Input value d of the head starting at `src`, normalised when HAS_QK_NORM (`scale` is 1 otherwise).
fn load_head(src: u32, d: u32, scale: f32, isQ: bool) -> f32 {
  var v = qkv[src + d];
  if (HAS_QK_NORM) { v *= scale * select(kNorm[d], qNorm[d], isQ); }
  return v;
}

// Output dim d of the head starting at `src`, at position p: rotated when d < rotaryDim.
fn rotated(src: u32, d: u32, scale: f32, isQ: bool, p: u32) -> f32 {
  let v = load_head(src, d, scale, isQ);
  if (d >= params.rotaryDim) { return v; }
  // i: the frequency index; first: whether d is x0 of its pair; partner: the other element.
  let half = params.rotaryDim / 2u;
  let first = d < half;
  let i = select(d - half, d, first);
  let partner = select(d - half, d + half, first);
  let c = table[(p * half + i) * 2u];
  let s = table[(p * half + i) * 2u + 1u];
  let other = load_head(src, partner, scale, isQ);
  return select(fma(v, c, other * s), fma(v, c, -other * s), first);
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let nH = params.nHeads;
  let nKv = params.nKvHeads;
  let hd = params.headDim;
  let heads = nH + 2u * nKv;
  let idx = wid.x + wid.y * nwg.x;
  if (idx >= params.T * heads) { return; }
  let t = idx / heads;
  let h = idx % heads;
  let p = params.pos + t;
  let src = idx * hd; // row t, head h of qkv

  let units = hd / 4u;
  if (h >= nH + nKv) {
    let dst = ((h - nH - nKv) * params.maxContext + p) * units;
    for (var u = lid; u < units; u += WG) {
      let d = src + 4u * u;
      vCache[dst + u] = kv_pack(vec4<f32>(qkv[d], qkv[d + 1u], qkv[d + 2u], qkv[d + 3u]));
    }
    return;
  }

  let isQ = h < nH;
  var scale = 1.0;
  if (HAS_QK_NORM) {
    var ss = 0.0;
    for (var d = lid; d < hd; d += WG) {
      let v = qkv[src + d];
      ss = fma(v, v, ss);
    }
    partial[lid] = ss;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
      if (lid < stride) { partial[lid] += partial[lid + stride]; }
      workgroupBarrier();
    }
    scale = inverseSqrt(partial[0] / f32(hd) + params.normEps);
  }

  for (var u = lid; u < units; u += WG) {
    let d = 4u * u;
    let v = vec4<f32>(rotated(src, d, scale, isQ, p), rotated(src, d + 1u, scale, isQ, p), rotated(src, d + 2u, scale, isQ, p), rotated(src, d + 3u, scale, isQ, p));
    if (isQ) {
      let dst = (t * nH + h) * hd + d;
      q[dst] = v.x;
      q[dst + 1u] = v.y;
      q[dst + 2u] = v.z;
      q[dst + 3u] = v.w;
    } else {
      kCache[((h - nH) * params.maxContext + p) * units + u] = kv_pack(v);
    }
  }
}
