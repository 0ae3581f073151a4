/** CPU reference for the mask_logits kernel. */

/** A copy of one row of logits with the listed ids set to -Infinity. */
export function maskLogitsRef(logits: Float32Array, ids: ArrayLike<number>): Float32Array {
  const out = logits.slice();
  for (let i = 0; i < ids.length; i++) out[ids[i]] = -Infinity;
  return out;
}
