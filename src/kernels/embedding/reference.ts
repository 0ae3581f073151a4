/** CPU reference for the embedding gather. Arithmetic in f64, results rounded to f32. */

/**
 * out[t] = table[ids[t]]·scale (+ posTable[pos + t]), the product rounded to f32 as the kernel rounds it. Ids ≥ V are clamped to V-1, which is what the kernel does to
 * stay in bounds (callers validate ids; this only pins the behaviour down).
 */
export function embeddingRef(
  ids: Uint32Array,
  table: Float32Array,
  V: number,
  D: number,
  positions?: { table: Float32Array; pos: number },
  scale = 1,
): Float32Array {
  const out = new Float32Array(ids.length * D);
  for (let t = 0; t < ids.length; t++) {
    const id = Math.min(ids[t], V - 1);
    for (let d = 0; d < D; d++) {
      let v = Math.fround(table[id * D + d] * scale);
      if (positions) v += positions.table[(positions.pos + t) * D + d];
      out[t * D + d] = v;
    }
  }
  return out;
}
