/** Pooling as sentence-transformers repos configure it, against straightforward per-element definitions. */
import { describe, expect, it } from 'vitest';
import { finishEmbedding, pool, readPoolingConfig } from '../../src/embeddings/pooling';
import { ModelConfigError } from '../../src/model/config';
import { memoryFiles } from '../../src/model/files';
import { createRng, freshSeed } from '../../src/util/random';

const ST = 'sentence_transformers.models.';
const modules = (...types: string[]) =>
  JSON.stringify(types.map((type, idx) => ({ idx, name: String(idx), path: type === 'Pooling' ? '1_Pooling' : '', type: ST + type })));
const poolingFlags = (on: string[]) =>
  JSON.stringify(Object.fromEntries(['cls_token', 'mean_tokens', 'max_tokens', 'mean_sqrt_len_tokens', 'lasttoken'].map((m) => [`pooling_mode_${m}`, on.includes(m)])));
const files = (entries: Record<string, string>) => memoryFiles('repo', new Map(Object.entries(entries)));

describe('readPoolingConfig', () => {
  it('reads the mode from 1_Pooling/config.json and Normalize from modules.json', async () => {
    const withNorm = files({ 'modules.json': modules('Transformer', 'Pooling', 'Normalize'), '1_Pooling/config.json': poolingFlags(['cls_token']) });
    expect(await readPoolingConfig(withNorm, false)).toMatchObject({ mode: 'cls', normalize: true });
    const without = files({ 'modules.json': modules('Transformer', 'Pooling'), '1_Pooling/config.json': poolingFlags(['lasttoken']) });
    expect(await readPoolingConfig(without, false)).toMatchObject({ mode: 'lasttoken', normalize: false, includePrompt: true });
    const flags = { ...JSON.parse(poolingFlags(['mean_tokens'])), include_prompt: false };
    const noPrompt = files({ 'modules.json': modules('Transformer', 'Pooling'), '1_Pooling/config.json': JSON.stringify(flags) });
    expect(await readPoolingConfig(noPrompt, false)).toMatchObject({ mode: 'mean', includePrompt: false });
    const badFlag = files({ 'modules.json': modules('Transformer', 'Pooling'), '1_Pooling/config.json': JSON.stringify({ ...flags, include_prompt: 'no' }) });
    await expect(readPoolingConfig(badFlag, false)).rejects.toThrow(/include_prompt/);
  });

  it('defaults to normalised mean pooling for encoders and last-token pooling for decoders', async () => {
    expect(await readPoolingConfig(files({}), false)).toMatchObject({ mode: 'mean', normalize: true });
    expect(await readPoolingConfig(files({}), true)).toMatchObject({ mode: 'lasttoken', normalize: true });
  });

  it('refuses a Dense module, several or unsupported modes, and a missing pooling config by name', async () => {
    const cases: Record<string, string>[] = [
      { 'modules.json': modules('Transformer', 'Pooling', 'Dense'), '1_Pooling/config.json': poolingFlags(['mean_tokens']) },
      { 'modules.json': modules('Transformer', 'Pooling'), '1_Pooling/config.json': poolingFlags(['mean_tokens', 'cls_token']) },
      { 'modules.json': modules('Transformer', 'Pooling'), '1_Pooling/config.json': poolingFlags(['mean_sqrt_len_tokens']) },
      { 'modules.json': modules('Transformer', 'Pooling') },
      { 'modules.json': '{"not": "a list"}' },
    ];
    for (const c of cases) await expect(readPoolingConfig(files(c), false)).rejects.toThrow(ModelConfigError);
  });
});

describe('pool and finishEmbedding', () => {
  const seed = freshSeed();
  const rng = createRng(seed);
  const [T, D] = [7, 5];
  const hidden = Float32Array.from({ length: T * D }, () => rng.normal());
  const at = (t: number, d: number) => hidden[t * D + d];

  it('mean, cls, last token and max match their definitions', () => {
    for (let d = 0; d < D; d++) {
      let sum = 0;
      let max = -Infinity;
      for (let t = 0; t < T; t++) ((sum += at(t, d)), (max = Math.max(max, at(t, d))));
      expect(pool(hidden, D, 'mean')[d]).toBeCloseTo(sum / T, 6);
      expect(pool(hidden, D, 'max')[d]).toBe(max);
      expect(pool(hidden, D, 'cls')[d]).toBe(at(0, d));
      expect(pool(hidden, D, 'lasttoken')[d]).toBe(at(T - 1, d));
    }
    expect(() => pool(hidden.subarray(1), D, 'mean')).toThrow(RangeError);
  });

  it('truncates to the first dimensions and scales to unit length only when asked', () => {
    const v = pool(hidden, D, 'mean');
    const unit = finishEmbedding(v, 3, true);
    expect(unit).toHaveLength(3);
    expect(Math.hypot(...unit)).toBeCloseTo(1, 6);
    const norm = Math.hypot(v[0], v[1], v[2]);
    for (let i = 0; i < 3; i++) expect(unit[i]).toBeCloseTo(v[i] / norm, 6);
    expect([...finishEmbedding(v, D, false)]).toEqual([...v]);
    expect([...finishEmbedding(new Float32Array(4), 4, true)]).toEqual([0, 0, 0, 0]);
  });
});
