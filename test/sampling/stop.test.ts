import { describe, expect, it } from 'vitest';
import { createRng, freshSeed } from '../../src/util/random';
import { finishReason } from '../../src/sampling/finish';
import { InvalidOptionError } from '../../src/sampling/options';
import { StopMatcher, type StopResult } from '../../src/sampling/stop';

/** Feeds the deltas; returns each push's result, the text emitted in all (flush included), and the stop. */
function stream(stops: string | string[], deltas: string[]) {
  const m = new StopMatcher(stops);
  const results: StopResult[] = deltas.map((d) => m.push(d));
  const last = results[results.length - 1];
  const stop = last?.stopped ? last.stop : null;
  const text = results.map((r) => r.text).join('') + m.flush();
  return { results, text, stop };
}

describe('StopMatcher', () => {
  it('matches across token boundaries and leaves the stop string out', () => {
    const { results, text, stop } = stream('lo w', ['Hel', 'lo wor', 'ld']);
    // "Hel": the trailing "l" could start "lo w", so only "He" is safe.
    expect(results[0]).toEqual({ text: 'He', stopped: false });
    // "l" + "lo wor" = "llo wor" holds "lo w" at 1: emit "l", stop.
    expect(results[1]).toEqual({ text: 'l', stopped: true, stop: 'lo w' });
    expect(results[2]).toEqual({ text: '', stopped: true, stop: 'lo w' });
    expect(text).toBe('Hel');
    expect(stop).toBe('lo w');
  });

  it('releases held text once it cannot be a stop string', () => {
    const m = new StopMatcher('lo w');
    expect(m.push('Hel')).toEqual({ text: 'He', stopped: false });
    // "llo": the suffix "lo" could still begin "lo w".
    expect(m.push('lo')).toEqual({ text: 'l', stopped: false });
    // "lo!" is no prefix of "lo w": all out.
    expect(m.push('!')).toEqual({ text: 'lo!', stopped: false });
    expect(m.flush()).toBe('');
  });

  it('flushes a partial match left at the end', () => {
    const m = new StopMatcher(['###']);
    expect(m.push('a ##')).toEqual({ text: 'a ', stopped: false });
    expect(m.flush()).toBe('##');
    expect(m.flush()).toBe('');
  });

  it('stops at the first of several stop strings to complete', () => {
    expect(stream(['xyz', 'lo'], ['hel', 'lo xyz'])).toMatchObject({ text: 'hel', stop: 'lo' });
    expect(stream(['bcd', 'abc'], ['xab', 'cd'])).toMatchObject({ text: 'x', stop: 'abc' });
    // The stop completed first wins, however the text is split: "c" ends before "abcd" does.
    expect(stream(['abcd', 'c'], ['xabcd'])).toMatchObject({ text: 'xab', stop: 'c' });
    expect(stream(['abcd', 'c'], ['x', 'a', 'b', 'c', 'd'])).toMatchObject({ text: 'xab', stop: 'c' });
    // Two completing together: the longer one, which starts earlier.
    expect(stream(['bc', 'abc'], ['xabcz'])).toMatchObject({ text: 'x', stop: 'abc' });
    // Held back for either candidate, released when neither completes.
    expect(stream(['ab', 'ac'], ['a', 'd'])).toMatchObject({ text: 'ad', stop: null });
  });

  it('stops at the very start', () => {
    expect(stream('STOP', ['STOP and more'])).toMatchObject({ text: '', stop: 'STOP' });
    expect(stream('STOP', ['S', 'T', 'O', 'P', 'x'])).toMatchObject({ text: '', stop: 'STOP' });
  });

  it('handles a stop string that overlaps itself', () => {
    // "aaa" → "aab" can only start at the second "a".
    expect(stream('aab', ['a', 'a', 'a', 'b', 'c'])).toMatchObject({ text: 'a', stop: 'aab' });
  });

  it('handles non-ASCII text', () => {
    expect(stream('é!', ['caf', 'é', '! ok'])).toMatchObject({ text: 'caf', stop: 'é!' });
    expect(stream('🙂', ['hi ', '🙂'])).toMatchObject({ text: 'hi ', stop: '🙂' });
  });

  it('passes everything through with no stop strings', () => {
    const m = new StopMatcher([]);
    expect(m.push('anything')).toEqual({ text: 'anything', stopped: false });
    expect(m.flush()).toBe('');
  });

  it('validates like the stop option', () => {
    for (const bad of [[''], ['a', 'b', 'c', 'd', 'e'], '']) {
      expect(() => new StopMatcher(bad)).toThrow(InvalidOptionError);
    }
  });

  it('agrees with a search over the whole text, for random texts and splits', () => {
    const seed = freshSeed();
    const rng = createRng(seed);
    const letters = 'ab c';
    const word = (n: number) => Array.from({ length: n }, () => letters[rng.int(letters.length)]).join('');
    for (let trial = 0; trial < 2000; trial++) {
      const stops = Array.from({ length: 1 + rng.int(4) }, () => word(1 + rng.int(4)));
      const full = word(rng.int(30));
      const deltas: string[] = [];
      for (let i = 0; i < full.length; ) {
        const n = rng.int(5);
        deltas.push(full.slice(i, i + n));
        i += n;
      }
      // Where the output ends: at the start of the stop string completed first (ties: the longer one).
      let first = -1;
      let end = Infinity;
      for (const s of stops) {
        const i = full.indexOf(s);
        if (i !== -1 && (i + s.length < end || (i + s.length === end && i < first))) {
          first = i;
          end = i + s.length;
        }
      }
      const m = new StopMatcher(stops);
      let emitted = '';
      let stopped = false;
      for (const d of deltas) {
        const r = m.push(d);
        emitted += r.text;
        stopped = r.stopped;
        // Nothing emitted may later turn out to be part of a stop string.
        expect(first === -1 || emitted.length <= first, `seed ${seed}`).toBe(true);
      }
      emitted += m.flush();
      expect(emitted, `seed ${seed} stops ${JSON.stringify(stops)} deltas ${JSON.stringify(deltas)}`).toBe(
        first === -1 ? full : full.slice(0, first),
      );
      expect(stopped).toBe(first !== -1);
    }
  });
});

describe('finishReason', () => {
  const limits = { eosTokenIds: [2, 7], maxTokens: 3 };
  it('stops on any EOS id, ends at max_tokens, and prefers stop when both hold', () => {
    expect(finishReason(5, 1, limits)).toBeNull();
    expect(finishReason(7, 1, limits)).toBe('stop');
    expect(finishReason(5, 3, limits)).toBe('length');
    expect(finishReason(2, 3, limits)).toBe('stop');
    expect(finishReason(5, 1000, { eosTokenIds: [], maxTokens: null })).toBeNull();
  });
});
