import { describe, expect, it } from 'vitest';
import {
  InvalidOptionError,
  MAX_BEAMS,
  MAX_TEMPERATURE,
  parseStop,
  resolveSamplingOptions,
  SAMPLING_OPTION_NAMES,
} from '../../src/sampling/options';

const limits = { vocabSize: 100 };

/** The InvalidOptionError that resolving `user` over `gen` throws. */
function rejection(user: unknown, gen: unknown = null): InvalidOptionError {
  try {
    resolveSamplingOptions(user, gen, limits);
  } catch (e) {
    if (e instanceof InvalidOptionError) return e;
    throw e;
  }
  throw new Error(`accepted ${JSON.stringify(user)}`);
}

describe('resolveSamplingOptions: defaults and merging', () => {
  it('disables every stage when nothing is given', () => {
    const r = resolveSamplingOptions(undefined, undefined, limits);
    expect(r).toMatchObject({
      temperature: 1,
      topP: 1,
      topK: 0,
      minP: 0,
      repetitionPenalty: 1,
      frequencyPenalty: 0,
      presencePenalty: 0,
      stop: [],
      maxTokens: null,
      numBeams: 1,
      lengthPenalty: 1,
      logprobs: false,
      topLogprobs: 0,
    });
    expect(r.logitBias.size).toBe(0);
  });

  it('takes generation_config defaults, and the user wins field by field', () => {
    const gen = {
      temperature: 0.6,
      top_p: 0.9,
      top_k: 20,
      min_p: 0.05,
      repetition_penalty: 1.05,
      do_sample: true,
      bos_token_id: 1,
      eos_token_id: [2, 3],
      max_new_tokens: 7,
    };
    const r = resolveSamplingOptions({ top_p: 0.5, top_k: 0 }, gen, limits);
    expect(r).toMatchObject({ temperature: 0.6, topP: 0.5, topK: 0, minP: 0.05, repetitionPenalty: 1.05 });
    expect(r.maxTokens).toBeNull();
  });

  it('do_sample: false makes greedy the default, which a user temperature overrides', () => {
    const gen = { do_sample: false, temperature: 0.7, top_p: 0.8 };
    expect(resolveSamplingOptions({}, gen, limits).temperature).toBe(0);
    expect(resolveSamplingOptions({ temperature: 0.3 }, gen, limits).temperature).toBe(0.3);
    expect(resolveSamplingOptions({}, { ...gen, do_sample: true }, limits).temperature).toBe(0.7);
  });

  it('reads null as absent', () => {
    const user = { temperature: null, stop: null, seed: null, logit_bias: null };
    const r = resolveSamplingOptions(user, { temperature: 0.4 }, limits);
    expect(r.temperature).toBe(0.4);
    expect(r.stop).toEqual([]);
  });

  it('resolves the rest', () => {
    const r = resolveSamplingOptions(
      {
        seed: 123,
        frequency_penalty: -2,
        presence_penalty: 2,
        logit_bias: { '5': 10, 99: -100, 0: 0.5 },
        stop: 'END',
        max_tokens: 16,
        num_beams: 4,
        length_penalty: -0.5,
      },
      null,
      limits,
    );
    expect(r).toMatchObject({ seed: 123, frequencyPenalty: -2, presencePenalty: 2, stop: ['END'], maxTokens: 16 });
    expect(r).toMatchObject({ numBeams: 4, lengthPenalty: -0.5 });
    expect([...r.logitBias].sort((a, b) => a[0] - b[0])).toEqual([[0, 0.5], [5, 10], [99, -100]]);
  });

  it('accepts the ends of every range', () => {
    const ok = [
      { temperature: 0 },
      { temperature: MAX_TEMPERATURE },
      { top_p: 1 },
      { top_p: 1e-9 },
      { top_k: 0 },
      { top_k: 1e6 },
      { min_p: 0 },
      { min_p: 1 },
      { repetition_penalty: 1e-3 },
      { seed: Number.MAX_SAFE_INTEGER },
      { seed: -5 },
      { num_beams: MAX_BEAMS },
    ];
    for (const user of ok) expect(() => resolveSamplingOptions(user, null, limits)).not.toThrow();
  });
});

describe('resolveSamplingOptions: validation', () => {
  const cases: [string, unknown, string][] = [
    ['temperature', -0.1, '[0, 2]'],
    ['temperature', 2.5, '[0, 2]'],
    ['temperature', NaN, '[0, 2]'],
    ['temperature', '0.7', '[0, 2]'],
    ['top_p', 0, '(0, 1]'],
    ['top_p', 1.01, '(0, 1]'],
    ['top_k', -1, '≥ 0'],
    ['top_k', 2.5, '≥ 0'],
    ['min_p', 1.5, '[0, 1]'],
    ['min_p', -0.1, '[0, 1]'],
    ['repetition_penalty', 0, '> 0'],
    ['repetition_penalty', Infinity, '> 0'],
    ['frequency_penalty', 2.1, '[-2, 2]'],
    ['presence_penalty', -3, '[-2, 2]'],
    ['seed', 1.5, 'safe integer'],
    ['seed', 2 ** 53, 'safe integer'],
    ['max_tokens', 0, '≥ 1'],
    ['num_beams', MAX_BEAMS + 1, `[1, ${MAX_BEAMS}]`],
    ['length_penalty', Infinity, 'finite'],
    ['stop', ['a', 'b', 'c', 'd', 'e'], 'at most 4'],
    ['stop', '', 'non-empty'],
    ['stop', ['ok', 3], 'non-empty'],
  ];
  for (const [option, value, allowed] of cases) {
    it(`rejects ${option} = ${String(value)}`, () => {
      const e = rejection({ [option]: value });
      expect(e.option).toBe(option);
      expect(e.allowed).toContain(allowed);
      expect(e.message).toContain(option);
    });
  }

  it('rejects logit_bias ids outside the vocabulary or not canonical, and biases outside [-100, 100]', () => {
    const bad = [{ 100: 1 }, { '-1': 1 }, { '1.5': 1 }, { '07': 1 }, { abc: 1 }, { 3: 101 }, { 3: '1' }, [1, 2]];
    for (const bias of bad) {
      const e = rejection({ logit_bias: bias });
      expect(e.option).toBe('logit_bias');
      expect(e.allowed).toContain('[0, 99]');
    }
  });

  it('rejects unknown option names, listing the known ones', () => {
    const e = rejection({ temprature: 0.5 });
    expect(e.option).toBe('temprature');
    for (const name of SAMPLING_OPTION_NAMES) expect(e.allowed).toContain(name);
    // A JSON body's "__proto__" is an own key like any other, so it is just unknown.
    expect(rejection(JSON.parse('{"__proto__": {"temperature": 5}}')).option).toBe('__proto__');
  });

  it('rejects options that are not an object', () => {
    expect(rejection([0.5]).option).toBe('(options)');
    expect(rejection('hot').option).toBe('(options)');
  });

  it('names generation_config when a bad default is used, and ignores it when overridden', () => {
    expect(rejection({}, { top_p: 1.5 }).option).toBe('generation_config.top_p');
    expect(rejection({}, { do_sample: 'yes' }).option).toBe('generation_config.do_sample');
    expect(rejection({}, 'not an object').option).toBe('generation_config');
    expect(resolveSamplingOptions({ top_p: 0.5 }, { top_p: 1.5 }, limits).topP).toBe(0.5);
  });

  it('errors are typed Errors with a readable message', () => {
    const e = rejection({ top_p: 2 });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('InvalidOptionError');
    expect(e.received).toBe(2);
    expect(e.message).toBe('Invalid option "top_p" = 2: expected a number in (0, 1]');
  });
});

describe('logprobs options', () => {
  it('accepts logprobs with 0 to 20 alternatives, and top_logprobs only with logprobs: true', () => {
    expect(resolveSamplingOptions({ logprobs: true, top_logprobs: 20 }, undefined, limits)).toMatchObject({ logprobs: true, topLogprobs: 20 });
    expect(resolveSamplingOptions({ logprobs: true }, undefined, limits)).toMatchObject({ logprobs: true, topLogprobs: 0 });
    expect(rejection({ logprobs: true, top_logprobs: 21 }).option).toBe('top_logprobs');
    expect(rejection({ logprobs: true, top_logprobs: 1.5 }).option).toBe('top_logprobs');
    expect(rejection({ top_logprobs: 3 }).option).toBe('top_logprobs');
    expect(rejection({ logprobs: 1 }).option).toBe('logprobs');
  });
});

describe('parseStop', () => {
  it('normalizes to a list', () => {
    expect(parseStop('x')).toEqual(['x']);
    expect(parseStop(['a', 'bc'])).toEqual(['a', 'bc']);
    expect(parseStop([])).toEqual([]);
    expect(parseStop(undefined)).toEqual([]);
  });
});
