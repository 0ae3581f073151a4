/**
 * Stop strings over streamed text. A stop string can straddle token boundaries ("Hel" + "lo wor" + "ld"
 * with stop "lo w"), so text that might be the start of one is held back until the next delta settles it;
 * the stop string itself and everything after it are never emitted.
 */
import { parseStop } from './options';

export type StopResult =
  /** `text` is safe to emit; generation goes on. */
  | { text: string; stopped: false }
  /** `text` (what preceded the stop string) is the last output; generation should finish with 'stop'. */
  | { text: string; stopped: true; stop: string };

export class StopMatcher {
  private readonly stops: readonly string[];
  private held = '';
  private hit: string | null = null;

  /** @throws InvalidOptionError (option "stop") unless 0 to MAX_STOP_STRINGS non-empty strings. */
  constructor(stop: string | readonly string[]) {
    this.stops = parseStop(stop);
  }

  /** Feeds one text delta; once a stop string has been hit, every later push returns it again with no text. */
  push(delta: string): StopResult {
    if (this.hit !== null) return { text: '', stopped: true, stop: this.hit };
    const text = this.held + delta;
    // The stop completed first wins (ties: the longer one), as if the text had arrived a character at a
    // time, so the result does not depend on how the text was cut into deltas.
    let at = -1;
    let end = Infinity;
    for (const s of this.stops) {
      const i = text.indexOf(s);
      if (i !== -1 && (i + s.length < end || (i + s.length === end && i < at))) {
        at = i;
        end = i + s.length;
        this.hit = s;
      }
    }
    if (this.hit !== null) {
      this.held = '';
      return { text: text.slice(0, at), stopped: true, stop: this.hit };
    }
    const keep = this.partialStopLength(text);
    this.held = text.slice(text.length - keep);
    return { text: text.slice(0, text.length - keep), stopped: false };
  }

  /** At the end of generation: the held-back text, which can no longer grow into a stop string. */
  flush(): string {
    const text = this.held;
    this.held = '';
    return text;
  }

  /**
   * Length of the longest suffix of `text` that is a proper prefix of some stop string. Holding exactly
   * that suffix is enough: any stop string that starts in `text` and runs past its end starts inside it.
   */
  private partialStopLength(text: string): number {
    let longest = 0;
    for (const s of this.stops) {
      for (let len = Math.min(s.length - 1, text.length); len > longest; len--) {
        if (text.endsWith(s.slice(0, len))) {
          longest = len;
          break;
        }
      }
    }
    return longest;
  }
}
