/** CPU references for the element-wise and row-wise kernels. Arithmetic in f64, results rounded to f32. */

export function siluRef(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** SwiGLU: out[r, i] = silu(gate) · up, each row of gateUp being [gate (I values), up (I values)]. */
export function siluMulRef(gateUp: Float32Array, rows: number, I: number): Float32Array {
  const out = new Float32Array(rows * I);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < I; i++) out[r * I + i] = siluRef(gateUp[r * 2 * I + i]) * gateUp[r * 2 * I + I + i];
  }
  return out;
}

/** GELU, tanh approximation (GPT-2's gelu_new). */
export function geluRef(x: Float32Array): Float32Array {
  const k = Math.sqrt(2 / Math.PI);
  return x.map((v) => 0.5 * v * (1 + Math.tanh(k * (v + 0.044715 * v * v * v))));
}

export function addRef(a: Float32Array, b: Float32Array): Float32Array {
  return a.map((v, i) => v + b[i]);
}

/**
 * out[t] = table[ids[t]] (+ posTable[pos + t]). Ids ≥ V are clamped to V-1, which is what the kernel does to
 * stay in bounds (callers validate ids; this only pins the behaviour down).
 */
export function embeddingRef(
  ids: Uint32Array,
  table: Float32Array,
  V: number,
  D: number,
  positions?: { table: Float32Array; pos: number },
): Float32Array {
  const out = new Float32Array(ids.length * D);
  for (let t = 0; t < ids.length; t++) {
    const id = Math.min(ids[t], V - 1);
    for (let d = 0; d < D; d++) {
      let v = table[id * D + d];
      if (positions) v += positions.table[(positions.pos + t) * D + d];
      out[t * D + d] = v;
    }
  }
  return out;
}

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

/** Row-wise softmax, subtracting the row maximum before exp. */
export function softmaxRef(x: Float32Array, rows: number, N: number): Float32Array {
  const out = new Float32Array(rows * N);
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * N, (r + 1) * N);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    for (let j = 0; j < N; j++) out[r * N + j] = Math.exp(row[j] - max) / sum;
  }
  return out;
}
