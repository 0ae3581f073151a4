/** CPU reference for the argmax kernel. */

/** Index of each row's largest value, the lowest index on ties (torch.argmax). */
export function argmaxRef(logits: Float32Array, rows: number, V: number): Uint32Array {
  const out = new Uint32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let j = 1; j < V; j++) if (logits[r * V + j] > logits[r * V + best]) best = j;
    out[r] = best;
  }
  return out;
}
