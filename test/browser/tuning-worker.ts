/** Worker half of the tuning-store test: tunes once when asked and posts the result back. */
import { tuneOnce } from './tuning-tune';

self.onmessage = () => {
  tuneOnce().then(
    (result) => self.postMessage({ result }),
    (e: unknown) => self.postMessage({ error: e instanceof Error ? e.message : String(e) }),
  );
};
