/**
 * Incremental detokenization for streaming output. Decoding one token alone is wrong twice over: a
 * SentencePiece "▁world" decodes to "world" at the start of a text (the decoder strips one leading space),
 * and a character split across byte tokens (<0xE2><0x9C><0x85> = "✅") decodes to U+FFFD until complete.
 * So we decode a window that starts at the previous emission, diff it against the decode of the window's
 * already-emitted part (both see the same leading-space rule), and hold back text that ends in U+FFFD.
 */
import type { DecodeOptions, Tokenizer } from './tokenizer';

export interface StreamDecoder {
  /** Adds one id; returns the text it completes (often '', e.g. mid-character). */
  push(id: number): string;
  /** Returns whatever is held back, even an incomplete character (as U+FFFD). */
  flush(): string;
}

export function createStreamDecoder(tokenizer: Pick<Tokenizer, 'decode'>, options: DecodeOptions = {}): StreamDecoder {
  // window: ids from the start of the previously emitted run; emitted: how many of them are already out;
  // emittedText: decode(window[0:emitted]).
  let window: number[] = [];
  let emitted = 0;
  let emittedText = '';

  const decode = (ids: number[]): string => tokenizer.decode(ids, options);

  /** The text past what is out, or null while it is not (yet) a clean extension of it. */
  const pending = (): string | null => {
    const text = decode(window);
    return text.startsWith(emittedText) ? text.slice(emittedText.length) : null;
  };

  const advance = (): void => {
    window = window.slice(emitted);
    emitted = window.length;
    emittedText = decode(window);
  };

  return {
    push(id) {
      window.push(id);
      let delta: string | null;
      try {
        delta = pending();
      } catch (e) {
        window.pop();
        throw e;
      }
      if (delta === null || delta === '' || delta.endsWith('\uFFFD')) return '';
      advance();
      return delta;
    },
    flush() {
      const delta = pending() ?? '';
      advance();
      return delta;
    },
  };
}
