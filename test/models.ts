/**
 * The test models folder: WEBGPU_LLM_MODELS, default ../shared/models (beside the repository). Missing →
 * a loud failure saying how to fix it, never a skipped test.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export function modelsDir(): string {
  const dir = resolve(process.env.WEBGPU_LLM_MODELS ?? join(import.meta.dirname, '..', '..', 'shared', 'models'));
  if (!existsSync(join(dir, 'stories260K', 'config.json'))) {
    throw new Error(
      `Test models not found in ${dir}. Set WEBGPU_LLM_MODELS to the folder holding stories260K/ and ` +
        `stories260K-f16/ (the shared models, ../shared/models beside the repository).`,
    );
  }
  return dir;
}

export function modelPath(name: string): string {
  return join(modelsDir(), name);
}

export function greedyGolden(): { prompt_ids: number[]; new_tokens: number; greedy_ids: number[] } {
  return JSON.parse(readFileSync(modelPath('stories260K/greedy-golden.json'), 'utf8'));
}
