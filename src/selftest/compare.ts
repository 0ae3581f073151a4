/** Normalized error between a GPU result and its CPU reference. */
export interface Comparison {
  /** Σ(actual − expected)² / Σ expected²; Infinity if any value is NaN or infinite where expected is finite. */
  nmse: number;
  maxAbsError: number;
  /** Index of the largest error, to point at the broken element. */
  worstIndex: number;
}

export function compare(actual: ArrayLike<number>, expected: ArrayLike<number>): Comparison {
  if (actual.length !== expected.length) {
    throw new Error(`length mismatch: got ${actual.length} values, expected ${expected.length}`);
  }
  let err = 0;
  let ref = 0;
  let maxAbsError = 0;
  let worstIndex = -1;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    // NaN fails every comparison, so test for "not finite" explicitly: a poisoned output must never pass.
    const e = Number.isFinite(d) ? d : Infinity;
    err += e * e;
    ref += expected[i] * expected[i];
    if (e > maxAbsError || worstIndex < 0) {
      maxAbsError = e;
      worstIndex = i;
    }
  }
  const nmse = err === 0 ? 0 : ref === 0 ? Infinity : err / ref;
  return { nmse, maxAbsError, worstIndex };
}

export interface CheckResult extends Comparison {
  name: string;
  tolerance: number;
  passed: boolean;
  seed: number;
}

export function check(name: string, seed: number, tolerance: number, actual: ArrayLike<number>, expected: ArrayLike<number>): CheckResult {
  const c = compare(actual, expected);
  return { name, seed, tolerance, ...c, passed: c.nmse <= tolerance };
}

export function describe(r: CheckResult): string {
  return (
    `${r.name}: nmse ${r.nmse.toExponential(2)} (tolerance ${r.tolerance.toExponential(0)}), ` +
    `max abs error ${r.maxAbsError.toExponential(2)} at index ${r.worstIndex}, seed ${r.seed}`
  );
}
