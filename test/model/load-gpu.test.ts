/** The loader's sources: a sharded checkpoint through model.safetensors.index.json, and URL resolution. */
import { describe, expect, it } from 'vitest';
import { writeSafetensors } from '../../src/dev/safetensors-writer';
import { parseModelConfig } from '../../src/model/config';
import { memoryFiles, resolveModelUrl } from '../../src/model/files';
import { folderFiles } from '../../src/model/files-node';
import { loadModel } from '../../src/model/load';
import { randomModel, SMALL_MODELS } from '../../src/dev/random-model';
import { loadCanonicalWeights, ModelWeightsError, tensorMapReader } from '../../src/model/weights';
import { createReferenceModel } from '../../src/model/reference';
import { compare } from '../../src/selftest/compare';
import { modelPath } from '../models';
import { freshSeed, testGpu } from '../gpu';

describe('loadModel', () => {
  it('loads a sharded checkpoint and matches the CPU reference', async () => {
    const gpu = await testGpu();
    const seed = freshSeed();
    const { config, tensors } = randomModel('qwen2', SMALL_MODELS.qwen2, seed);
    const entries = [...tensors.entries()];
    const half = Math.ceil(entries.length / 2);
    const shardNames = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    const files = new Map<string, string | Uint8Array>();
    const weightMap: Record<string, string> = {};
    [entries.slice(0, half), entries.slice(half)].forEach((part, i) => {
      files.set(shardNames[i], writeSafetensors(part.map(([name, t]) => ({ name, dtype: t.dtype === 'f16' ? 'F16' : 'F32', shape: t.shape, data: t.data }))));
      for (const [name] of part) weightMap[name] = shardNames[i];
    });
    files.set('model.safetensors.index.json', JSON.stringify({ metadata: {}, weight_map: weightMap }));
    files.set('config.json', JSON.stringify(config));
    // Any tokenizer will do: the test feeds token ids.
    const stories = folderFiles(modelPath('stories260K'));
    files.set('tokenizer.json', (await stories.text('tokenizer.json'))!);

    const progress: number[] = [];
    const { model, spec } = await loadModel(gpu, memoryFiles('sharded', files), {
      contextLength: 32,
      onProgress: (p) => p.stage === 'read' && progress.push(p.done / p.total),
    });
    expect(progress.at(-1)).toBe(1);
    const reference = createReferenceModel(spec, await loadCanonicalWeights(parseModelConfig(config), tensorMapReader(tensors)));
    const prompt = [3, 14, 15, 92, 65, 35];
    let expected: Float32Array = new Float32Array();
    prompt.forEach((t, p) => (expected = reference.forward(t, p)));
    const actual = await model.forward(prompt, 'logits');
    if (actual.kind !== 'logits') throw new Error('expected logits');
    const { nmse } = compare(actual.logits, expected);
    expect(nmse, `seed ${seed}`).toBeLessThanOrEqual(1e-5);
    model.destroy();
  });

  /** stories260K's files in memory, to be edited by a test. */
  async function storiesFiles(): Promise<Map<string, string | Uint8Array>> {
    const stories = folderFiles(modelPath('stories260K'));
    const files = new Map<string, string | Uint8Array>();
    for (const file of ['config.json', 'tokenizer.json']) files.set(file, (await stories.text(file))!);
    const weights = (await stories.bytes('model.safetensors'))!;
    files.set('model.safetensors', new Uint8Array(await weights.read(0, weights.size)));
    return files;
  }

  it('refuses tensors for layers past num_hidden_layers, and loads the model with its real config', async () => {
    const gpu = await testGpu();
    const files = await storiesFiles();
    const config = JSON.parse(files.get('config.json') as string) as { num_hidden_layers: number };
    const layers = config.num_hidden_layers;
    files.set('config.json', JSON.stringify({ ...config, num_hidden_layers: layers - 1 }));
    const error = await loadModel(gpu, memoryFiles('too-many-layers', files), { contextLength: 16 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelWeightsError);
    expect((error as Error).message).toMatch(new RegExp(`layers\\.${layers - 1}\\..*belongs to layer ${layers - 1}, but config.json says num_hidden_layers is ${layers - 1}`));
    files.set('config.json', JSON.stringify(config));
    const loaded = await loadModel(gpu, memoryFiles('stories', files), { contextLength: 16 });
    expect(loaded.spec.numLayers).toBe(layers);
    loaded.model.destroy();
  });

  it('takes chat_template.jinja when tokenizer_config.json says "chat_template": null', async () => {
    const gpu = await testGpu();
    const files = await storiesFiles();
    files.set('tokenizer_config.json', JSON.stringify({ chat_template: null }));
    files.set('chat_template.jinja', '{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}');
    const loaded = await loadModel(gpu, memoryFiles('null-template', files), { contextLength: 16 });
    expect(loaded.tokenizerConfig.chat_template).toBe(files.get('chat_template.jinja'));
    loaded.model.destroy();
  });

  it('resolves Hugging Face repo URLs and plain base URLs', () => {
    expect(resolveModelUrl('https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct')('config.json')).toBe(
      'https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct/resolve/main/config.json',
    );
    expect(resolveModelUrl('https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct/tree/v1')('tokenizer.json')).toBe(
      'https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct/resolve/v1/tokenizer.json',
    );
    expect(resolveModelUrl('http://127.0.0.1:5173/models/stories260K')('model.safetensors')).toBe(
      'http://127.0.0.1:5173/models/stories260K/model.safetensors',
    );
  });
});
