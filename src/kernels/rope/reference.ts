/**
 * CPU reference for rope + KV-cache write. Angles are (pos + t)·invFreq[i] in f64 with Math.cos/sin,
 * independent of the table the GPU reads; the optional per-head RMSNorm accumulates in f64.
 */
export interface RopeRefArgs {
  /** [T, (nHeads + 2·nKvHeads)·headDim]. */
  qkv: Float32Array;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  rotaryDim: number;
  maxContext: number;
  /** rotaryDim/2 inverse frequencies. */
  invFreq: ArrayLike<number>;
  qNorm?: Float32Array;
  kNorm?: Float32Array;
  normEps?: number;
  T: number;
  pos: number;
}

/**
 * Writes rows 0..T−1 of q [maxT, nHeads, headDim] and positions pos..pos+T−1 of kCache / vCache
 * [nKvHeads, maxContext, headDim] in place, leaving everything else as it was (like the kernel).
 */
export function ropeRef(a: RopeRefArgs, q: Float32Array, kCache: Float32Array, vCache: Float32Array): void {
  const { nHeads, nKvHeads, headDim, rotaryDim, maxContext } = a;
  const width = (nHeads + 2 * nKvHeads) * headDim;
  const half = rotaryDim / 2;
  for (let t = 0; t < a.T; t++) {
    const p = a.pos + t;
    for (let h = 0; h < nHeads + 2 * nKvHeads; h++) {
      const head = Array.from(a.qkv.subarray(t * width + h * headDim, t * width + (h + 1) * headDim));
      let dst: Float32Array;
      let offset: number;
      if (h < nHeads) {
        [dst, offset] = [q, (t * nHeads + h) * headDim];
      } else if (h < nHeads + nKvHeads) {
        [dst, offset] = [kCache, ((h - nHeads) * maxContext + p) * headDim];
      } else {
        vCache.set(head, ((h - nHeads - nKvHeads) * maxContext + p) * headDim);
        continue;
      }
      const norm = h < nHeads ? a.qNorm : a.kNorm;
      if (norm) {
        const ms = head.reduce((s, v) => s + v * v, 0) / headDim;
        const scale = 1 / Math.sqrt(ms + (a.normEps ?? 0));
        for (let d = 0; d < headDim; d++) head[d] *= scale * norm[d];
      }
      const out = [...head];
      for (let i = 0; i < half; i++) {
        const [i0, i1] = [i, i + half];
        const angle = p * a.invFreq[i];
        const [c, s] = [Math.cos(angle), Math.sin(angle)];
        out[i0] = head[i0] * c - head[i1] * s;
        out[i1] = head[i1] * c + head[i0] * s;
      }
      dst.set(out, offset);
    }
  }
}
