/**
 * Typed errors of the download cache besides HTTP (those are HttpError from net/): messages name the model
 * and say what the user can do.
 */

/** A cached chunk failed its size or SHA-256 check and could not be fetched again (offline, or changed upstream). */
export class IntegrityError extends Error {
  override readonly name = 'IntegrityError';
  constructor(
    readonly modelId: string,
    readonly file: string,
    /** The chunk's index within the file. */
    readonly chunk: number,
    /** What was wrong with the stored chunk. */
    readonly problem: string,
    options: { cause?: unknown } = {},
  ) {
    const why = options.cause instanceof Error ? ` (${options.cause.message})` : '';
    super(
      `${modelId}: cached chunk ${chunk} of ${file} is damaged (${problem}) and could not be downloaded again${why}. ` +
        'Go online and load the model again to repair it, or delete the cached model.',
      options,
    );
  }
}

/** The browser's storage quota is too small for the model, found before downloading or on a write. */
export class StorageQuotaError extends Error {
  override readonly name = 'StorageQuotaError';
  constructor(
    readonly modelId: string,
    /** Bytes the model still needs to store. */
    readonly neededBytes: number,
    /** `navigator.storage.estimate()` at the time, where the browser has it. */
    readonly usageBytes: number | undefined,
    readonly quotaBytes: number | undefined,
    options: { cause?: unknown } = {},
  ) {
    const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    const where =
      usageBytes !== undefined && quotaBytes !== undefined
        ? `this site uses ${mb(usageBytes)} of its ${mb(quotaBytes)} quota (${mb(Math.max(0, quotaBytes - usageBytes))} free)`
        : 'the browser does not report its storage quota';
    super(
      `${modelId}: not enough storage: the model needs ${mb(neededBytes)} more and ${where}. ` +
        'Delete other cached models or free disk space, then try again.',
      options,
    );
  }
}
