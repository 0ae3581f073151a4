/** CPU reference for the argmax kernel. */

/** What argmax gives a row with NaN or +Infinity, or with no finite value: the sampler cannot use it. */
export const ARGMAX_NON_FINITE = 0xffffffff;

/**
 * Index of each row's largest value, the lowest index on ties (torch.argmax); ARGMAX_NON_FINITE for a row
 * holding NaN or +Infinity, or whose values are all -Infinity.
 */
export function argmaxRef(logits: Float32Array, rows: number, V: number): Uint32Array {
  const out = new Uint32Array(rows);
  for (let r = 0; r < rows; r++) {
    const row = logits.subarray(r * V, (r + 1) * V);
    let best = 0;
    for (let j = 1; j < V; j++) if (row[j] > row[best]) best = j;
    const broken = row.some((v) => Number.isNaN(v) || v === Infinity) || row[best] === -Infinity;
    out[r] = broken ? ARGMAX_NON_FINITE : best;
  }
  return out;
}
