/**
 * First-come-first-served access to the one model: each request holds the lock from its first token until
 * it finishes, aborts or its consumer stops iterating, so concurrent requests never interleave on the GPU.
 */
export class RequestQueue {
  private tail: Promise<void> = Promise.resolve();
  private waiting = 0;

  /** Resolves with a release function once every earlier request has released. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const previous = this.tail;
    this.tail = previous.then(() => mine);
    this.waiting++;
    let released = false;
    const releaseOnce = () => {
      if (!released) {
        released = true;
        release();
      }
    };
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        // Leave the chain intact: our slot passes straight through once the earlier requests finish.
        this.waiting--;
        previous.then(releaseOnce);
        reject(signal?.reason ?? new DOMException('The request was aborted', 'AbortError'));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      previous.then(() => {
        if (signal?.aborted) return;
        signal?.removeEventListener('abort', onAbort);
        this.waiting--;
        resolve(releaseOnce);
      });
    });
  }

  /** Requests waiting for the lock (not counting the one holding it). */
  get pending(): number {
    return this.waiting;
  }
}
