/**
 * The hfToken option reaches the requests of a model given by URL, for chat and embedding engines alike:
 * each request to huggingface.co carries it (the folder answers 404 here, so the load fails after asking).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createEmbeddingEngine } from '../../src/embeddings/engine';
import { createEngine } from '../../src/engine/engine';
import { testGpu } from '../gpu';

const TOKEN = 'hf_test_token_0123456789';
const REPO = 'https://huggingface.co/org/gated-model/resolve/main';

/** Stubs the global fetch with one that records each request's Authorization header and answers 404. */
function recordingFetch(): (string | null)[] {
  const seen: (string | null)[] = [];
  vi.stubGlobal('fetch', async (input: RequestInfo | URL, init?: RequestInit) => {
    seen.push(new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined)).get('Authorization'));
    return new Response('not found', { status: 404 });
  });
  return seen;
}

describe('hfToken on a model given by URL', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('createEngine sends it to huggingface.co', async () => {
    const seen = recordingFetch();
    await expect(createEngine(REPO, { gpu: await testGpu(), hfToken: TOKEN })).rejects.toMatchObject({ name: 'ModelFileMissingError' });
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((a) => a === `Bearer ${TOKEN}`)).toBe(true);
  });

  it('createEmbeddingEngine sends it to huggingface.co', async () => {
    const seen = recordingFetch();
    await expect(createEmbeddingEngine(REPO, { gpu: await testGpu(), hfToken: TOKEN })).rejects.toMatchObject({ name: 'ModelFileMissingError' });
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((a) => a === `Bearer ${TOKEN}`)).toBe(true);
  });
});
