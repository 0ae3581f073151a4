/**
 * Selection over a logits vector without sorting it: V can be 151936 while only a handful of tokens
 * matter. Non-finite values (-Infinity for masked tokens, NaN) never count as candidates.
 */

/** Index a ranks below index b: a lower value, or an equal value at a higher index (ties go to the lower index). */
function below(values: ArrayLike<number>, a: number, b: number): boolean {
  const va = values[a];
  const vb = values[b];
  return va < vb || (va === vb && a > b);
}

function siftDown(values: ArrayLike<number>, heap: Int32Array, size: number, at: number): void {
  for (;;) {
    const left = 2 * at + 1;
    if (left >= size) return;
    const right = left + 1;
    const child = right < size && below(values, heap[right], heap[left]) ? right : left;
    if (!below(values, heap[child], heap[at])) return;
    const t = heap[at];
    heap[at] = heap[child];
    heap[child] = t;
    at = child;
  }
}

function siftUp(values: ArrayLike<number>, heap: Int32Array, at: number): void {
  while (at > 0) {
    const parent = (at - 1) >> 1;
    if (!below(values, heap[at], heap[parent])) return;
    const t = heap[at];
    heap[at] = heap[parent];
    heap[parent] = t;
    at = parent;
  }
}

/**
 * Puts the indices of the k best finite values (ties → lower index) into heap[0, returned count) as a
 * min-heap, so heap[0] is the k-th best. The count is below k only when fewer than k values are finite.
 * O(V log k) worst case, O(V) typical; `heap` (length ≥ k) is caller-owned scratch, so nothing is allocated.
 */
export function selectTop(values: ArrayLike<number>, k: number, heap: Int32Array): number {
  let size = 0;
  for (let i = 0; i < values.length; i++) {
    if (!(values[i] > -Infinity)) continue;
    if (size < k) {
      heap[size] = i;
      siftUp(values, heap, size++);
    } else if (values[i] > values[heap[0]]) {
      // A later index never beats an equal value, so strictly greater is the whole test.
      heap[0] = i;
      siftDown(values, heap, size, 0);
    }
  }
  return size;
}

/** The indices of the k best finite values, best first (ties → lower index). Allocates; not for per-token use. */
export function topIndices(values: ArrayLike<number>, k: number): number[] {
  const heap = new Int32Array(Math.min(k, values.length));
  const count = selectTop(values, heap.length, heap);
  return Array.from(heap.subarray(0, count)).sort((a, b) => (below(values, a, b) ? 1 : below(values, b, a) ? -1 : 0));
}

/** The index of the largest value (NaN and -Infinity never win), the lowest on ties; -1 when there is none. */
export function argmax(values: ArrayLike<number>): number {
  let best = -1;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    if (values[i] > max) {
      max = values[i];
      best = i;
    }
  }
  return best;
}

/** The largest value, NaN ignored; -Infinity when there is none. */
export function maxFinite(values: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i] > max) max = values[i];
  return max;
}
