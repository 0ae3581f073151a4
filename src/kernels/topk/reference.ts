/** Index of a slot that holds no candidate (fewer than k values are not NaN); its value is -Infinity. */
export const NO_INDEX = 0xffffffff;

/**
 * The k largest values of `logits`, best first, ties to the lower index (a stable sort by (-value, index));
 * NaN is never selected, -Infinity is an ordinary (lowest) value, and -0 ties with +0. Slots past the
 * number of non-NaN values hold (-Infinity, NO_INDEX).
 */
export function topKRef(logits: Float32Array, k: number): { values: Float32Array; indices: Uint32Array } {
  const candidates: number[] = [];
  for (let i = 0; i < logits.length; i++) if (!Number.isNaN(logits[i])) candidates.push(i);
  candidates.sort((a, b) => (logits[a] === logits[b] ? a - b : logits[a] > logits[b] ? -1 : 1));
  const values = new Float32Array(k).fill(-Infinity);
  const indices = new Uint32Array(k).fill(NO_INDEX);
  for (let r = 0; r < Math.min(k, candidates.length); r++) {
    indices[r] = candidates[r];
    values[r] = logits[candidates[r]];
  }
  return { values, indices };
}
