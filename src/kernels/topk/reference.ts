/**
 * The k largest values of `logits`, best first, ties to the lower index (a stable sort by (-value, index)).
 * NaN ranks above every number (so a broken row shows in values[0]), -Infinity is an ordinary (lowest)
 * value, and -0 ties with +0. k ≤ logits.length.
 */
export function topKRef(logits: Float32Array, k: number): { values: Float32Array; indices: Uint32Array } {
  const isNan = Uint8Array.from(logits, (v) => Number(Number.isNaN(v)));
  const rank = Float64Array.from(logits, (v) => (Number.isNaN(v) ? Infinity : v));
  const order = Array.from(logits.keys());
  order.sort((a, b) => isNan[b] - isNan[a] || (rank[a] === rank[b] ? a - b : rank[a] > rank[b] ? -1 : 1));
  const indices = Uint32Array.from(order.slice(0, k));
  return { values: Float32Array.from(indices, (i) => logits[i]), indices };
}
