/**
 * The shared test files: WEBGPU_LLM_MODELS names the models folder (default ../shared/models beside the
 * repository); ../tokenizers sits beside it. A missing file is a loud failure saying how to fix it, never a
 * skipped test.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');

export function modelsDir(): string {
  return resolve(ROOT, process.env.WEBGPU_LLM_MODELS ?? '../shared/models');
}

/** A path under the models folder (`..` reaches the shared tokenizers), checked to exist. */
export function modelPath(...parts: string[]): string {
  const path = resolve(modelsDir(), ...parts);
  if (!existsSync(path)) {
    throw new Error(
      `Test file ${path} is missing. Set WEBGPU_LLM_MODELS to the folder holding stories260K/ and ` +
        `stories260K-f16/ (the shared models, ../shared/models beside the repository, with ../tokenizers/llama2 beside it).`,
    );
  }
  return path;
}

export function readModelText(...parts: string[]): string {
  return readFileSync(modelPath(...parts), 'utf8');
}

export function readModelBytes(...parts: string[]): Uint8Array<ArrayBuffer> {
  return new Uint8Array(readFileSync(modelPath(...parts)));
}

/** The 32000-token Llama-2 tokenizer's folder. */
export function llama2TokenizerPath(file: string): string {
  return modelPath('..', 'tokenizers', 'llama2', file);
}

export function greedyGolden(): { prompt_ids: number[]; new_tokens: number; greedy_ids: number[] } {
  return JSON.parse(readModelText('stories260K', 'greedy-golden.json'));
}
