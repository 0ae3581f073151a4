import { describe, expect, it } from 'vitest';
import { folderFiles } from '../../src/model/files-node';
import { loadModel } from '../../src/model/load';
import { greedyGolden, modelPath } from '../models';
import { testGpu } from '../gpu';

describe('stories260K on the GPU', () => {
  for (const [dir, dtype] of [['stories260K', 'f32'], ['stories260K-f16', 'f16']] as const) {
    it(`greedy 200 tokens from BOS equal the golden ids (${dir}, ${dtype} weights)`, async () => {
      const gpu = await testGpu();
      const golden = greedyGolden();
      const { model, tokenizer } = await loadModel(gpu, folderFiles(modelPath(dir)), { dtype });
      const ids: number[] = [];
      let next = await model.forward(golden.prompt_ids);
      for (let i = 0; i < golden.new_tokens; i++) {
        if (next.kind !== 'token') throw new Error('expected a token');
        ids.push(next.token);
        if (i + 1 < golden.new_tokens) next = await model.forward([next.token]);
      }
      expect(ids).toEqual(golden.greedy_ids);
      expect(tokenizer.decode(ids)).toMatch(/^Once upon a time, there was a little girl named Lily/);
      model.destroy();
    });
  }
});
