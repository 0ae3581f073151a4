/** A small seedable PRNG (mulberry32) so a failing random test can be replayed from its printed seed. */
export interface Rng {
  seed: number;
  /** Uniform in [0, 1). */
  next(): number;
  /** Standard normal (Box–Muller). */
  normal(): number;
  int(maxExclusive: number): number;
}

export function createRng(seed: number): Rng {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    seed,
    next,
    normal: () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()),
    int: (maxExclusive) => Math.floor(next() * maxExclusive),
  };
}

/** A fresh seed per run, unless WEBGPU_LLM_SEED replays one. */
export function freshSeed(): number {
  const fixed = typeof process !== 'undefined' ? process.env?.WEBGPU_LLM_SEED : undefined;
  if (fixed) return Number(fixed) >>> 0;
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

export function randomNormal(rng: Rng, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * scale;
  return out;
}
