/**
 * The IndexedDB download cache in headless Chromium: stories260K from the dev server's /models/, stored in
 * 64 KiB chunks so its 1 MB of weights span 16 of them. Each test gets a fresh browser context (empty
 * storage); requests for model files are counted with Playwright.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelPath } from '../models';
import { startBrowser, type BrowserHarness } from '../../src/dev/browser';
import type { OpenArgs, OpenResult } from './storage-page';

const CHUNK = 64 * 1024;
const WEIGHTS = 'model.safetensors';
const PRESENT = ['config.json', 'tokenizer.json', 'tokenizer_config.json', WEIGHTS];
const ABSENT = ['generation_config.json', 'chat_template.jinja'];

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const originals = new Map(PRESENT.map((f) => [f, readFileSync(join(modelPath('stories260K'), f))]));
const weights = readFileSync(join(modelPath('stories260K'), WEIGHTS));
const TOTAL = [...originals.values()].reduce((sum, b) => sum + b.byteLength, 0);
const SMALL_FILES = TOTAL - weights.byteLength;
const expectedFiles = Object.fromEntries([...originals].map(([f, b]) => [f, { size: b.byteLength, sha256: sha256(b) }]));

interface LoggedRequest {
  method: string;
  file: string;
  range: string | undefined;
}

let harness: BrowserHarness;
let modelUrl: string;
/** The default model id: the folder URL without trailing slash. */
let modelId: string;
beforeAll(async () => {
  harness = await startBrowser();
  modelUrl = harness.url('/models/stories260K/');
  modelId = harness.url('/models/stories260K');
});
afterAll(() => harness?.close());

/** Opens the test page in `page` and logs its requests for model files. */
async function load(page: Page): Promise<LoggedRequest[]> {
  const requests: LoggedRequest[] = [];
  page.on('request', (r) => {
    const path = new URL(r.url()).pathname;
    if (path.startsWith('/models/')) requests.push({ method: r.method(), file: path.split('/').pop() ?? '', range: r.headers()['range'] });
  });
  await page.goto(harness.url('/test/browser/storage.html'));
  await page.waitForFunction(() => window.__storage !== undefined);
  return requests;
}

async function newPage(): Promise<{ page: Page; requests: LoggedRequest[]; consoleErrors: string[] }> {
  const { page, consoleErrors } = await harness.newPage();
  return { page, requests: await load(page), consoleErrors };
}

function open(page: Page, args: Partial<OpenArgs> = {}): Promise<OpenResult> {
  return page.evaluate(
    (a) => {
      const storage = window.__storage;
      if (!storage) throw new Error('the storage test page is not ready');
      return storage.open(a);
    },
    { url: modelUrl, chunkBytes: CHUNK, ...args },
  );
}

function storedKeys(page: Page): Promise<IDBValidKey[]> {
  return page.evaluate(() => window.__storage?.idb.keys() ?? []);
}

/** A stored value; keys here are arrays of strings and numbers (IDBValidKey's recursion is too deep for Playwright's types). */
function stored(page: Page, key: Array<string | number>): Promise<unknown> {
  return page.evaluate((k) => window.__storage?.idb.get(k), key);
}

/** Keys (arrays) of one model, optionally of one of its files. */
function keysOf(keys: IDBValidKey[], id: string, file?: string): IDBValidKey[] {
  return keys.filter((k) => Array.isArray(k) && k[1] === id && (file === undefined || k[2] === file));
}

function expectComplete(result: OpenResult): void {
  if (!result.ok) throw new Error(`open failed: ${result.error.name}: ${result.error.message}`);
  expect(result.files).toEqual(expectedFiles);
  expect(result.textMatches).toBe(true);
  expect(result.straddlingReadsMatch).toBe(true);
}

function expectError(result: OpenResult, expected: Record<string, unknown>): void {
  if (result.ok) throw new Error('open succeeded where it should have failed');
  expect(result.error).toMatchObject(expected);
}

/** Fulfills every request for `file` (HEAD and GET) with `answer`. */
async function fake(page: Page, file: string, answer: { status: number; contentType?: string; body?: string }): Promise<void> {
  await page.route(`**/models/stories260K/${file}`, (route) => route.fulfill(answer));
}

it('downloads with monotonic progress into verified chunks; the files are byte-identical; the manifest is written', async () => {
  const { page, requests, consoleErrors } = await newPage();
  const result = await open(page);
  expectComplete(result);
  if (!result.ok) return;

  const events = result.progress;
  expect(events.length).toBeGreaterThan(PRESENT.length);
  for (let i = 1; i < events.length; i++) {
    expect(events[i].loaded).toBeGreaterThanOrEqual(events[i - 1].loaded);
    expect(events[i].total).toBe(TOTAL);
  }
  for (const e of events) expect(e.fileLoaded).toBeLessThanOrEqual(e.fileTotal);
  const last = events[events.length - 1];
  expect(last).toMatchObject({ file: WEIGHTS, fileLoaded: weights.byteLength, fileTotal: weights.byteLength, loaded: TOTAL, total: TOTAL, etaSeconds: 0 });
  expect(last.bytesPerSecond).toBeGreaterThan(0);

  const manifest = await stored(page, ['manifest', modelId]);
  const chunks = [];
  for (let at = 0; at < weights.byteLength; at += CHUNK) {
    const bytes = weights.subarray(at, at + CHUNK);
    chunks.push({ size: bytes.byteLength, sha256: sha256(bytes) });
  }
  expect(chunks).toHaveLength(16);
  expect(manifest).toMatchObject({ version: 1, modelId, url: modelId, totalBytes: TOTAL, absent: ABSENT });
  expect(manifest).toHaveProperty(['files', 3], { name: WEIGHTS, size: weights.byteLength, chunks });
  // The progress records were replaced by the manifest.
  expect((await storedKeys(page)).filter((k) => Array.isArray(k) && k[0] === 'progress')).toEqual([]);

  // Sizes first (HEAD, absent optional files answer 404), then each present file once, whole.
  expect(requests.filter((r) => r.method === 'HEAD').map((r) => r.file).sort()).toEqual([...PRESENT, ...ABSENT].sort());
  expect(requests.filter((r) => r.method === 'GET')).toEqual(PRESENT.map((file) => ({ method: 'GET', file, range: undefined })));
  expect(consoleErrors.filter((e) => !e.includes('404'))).toEqual([]);
});

it('opens a cached model again, and after a reload, with zero requests and no hashing until a file is read', async () => {
  const { page, requests } = await newPage();
  expectComplete(await open(page));
  requests.length = 0;
  const again = await open(page);
  expectComplete(again);
  expect(again.progress).toEqual([]);
  // Chunks are verified as the loader reads them, so each byte is read and hashed once, not also at open.
  expect(again.ok && again.digestsAtOpen).toBe(0);
  await page.reload();
  await page.waitForFunction(() => window.__storage !== undefined);
  expectComplete(await open(page));
  expect(requests).toEqual([]);
});

describe('integrity', () => {
  async function corrupt(page: Page, index: number, byte: number): Promise<void> {
    await page.evaluate(
      async ({ id, file, index, byte }) => {
        const storage = window.__storage;
        if (!storage) throw new Error('the storage test page is not ready');
        const key = storage.key.chunk(id, file, index);
        const chunk = await storage.idb.get(key);
        if (!(chunk instanceof ArrayBuffer)) throw new Error(`no chunk at ${JSON.stringify(key)}`);
        new Uint8Array(chunk)[byte] ^= 0xff;
        await storage.idb.set(key, chunk);
      },
      { id: modelId, file: WEIGHTS, index, byte },
    );
  }

  it('finds a corrupted chunk on the next open and fetches exactly its bytes again', async () => {
    const { page, requests } = await newPage();
    expectComplete(await open(page));
    await corrupt(page, 3, 100);
    requests.length = 0;
    expectComplete(await open(page));
    expect(requests).toEqual([{ method: 'GET', file: WEIGHTS, range: `bytes=${3 * CHUNK}-${4 * CHUNK - 1}` }]);
    // The repaired chunk is stored: the next open is offline again.
    requests.length = 0;
    expectComplete(await open(page));
    expect(requests).toEqual([]);
  });

  it('verifies chunks when files are read, too: one damaged after the open is fetched again', async () => {
    const { page, requests } = await newPage();
    expectComplete(await open(page));
    requests.length = 0;
    expectComplete(await open(page, { corruptAfterOpen: { modelId, file: WEIGHTS, chunk: 15 } }));
    expect(requests).toEqual([{ method: 'GET', file: WEIGHTS, range: `bytes=${15 * CHUNK}-${weights.byteLength - 1}` }]);
  });

  it('fails with an IntegrityError when a damaged chunk cannot be fetched again (offline)', async () => {
    const { page } = await newPage();
    expectComplete(await open(page));
    await corrupt(page, 5, 0);
    await page.route('**/models/**', (route) => route.abort('internetdisconnected'));
    expectError(await open(page), { name: 'IntegrityError', file: WEIGHTS, chunk: 5 });
  });
});

describe('failed downloads are typed and cache nothing for the failed file', () => {
  it('a required file answering 404', async () => {
    const { page } = await newPage();
    await fake(page, 'tokenizer.json', { status: 404, body: 'not found' });
    expectError(await open(page), { name: 'HttpError', code: 'status', status: 404, file: 'tokenizer.json' });
    // Sizes are asked before any download, so nothing at all was stored.
    expect(await storedKeys(page)).toEqual([]);
  });

  it('no weights at all (model.safetensors and its index both 404)', async () => {
    const { page } = await newPage();
    await fake(page, WEIGHTS, { status: 404 });
    await fake(page, 'model.safetensors.index.json', { status: 404 });
    expectError(await open(page), { name: 'HttpError', code: 'status', status: 404, file: WEIGHTS });
    expect(await storedKeys(page)).toEqual([]);
  });

  it('a text file over the 64 MiB cap for text files, refused from its declared size', async () => {
    const { page } = await newPage();
    await page.route('**/models/stories260K/config.json', (route) =>
      route.fulfill({ status: 200, contentType: 'application/json', headers: { 'Content-Length': String(3 * 2 ** 30) }, body: '' }),
    );
    const result = await open(page);
    expectError(result, { name: 'HttpError', code: 'too-large', file: 'config.json' });
    if (!result.ok) expect(result.error.message).toContain('over the 64 MiB cap for text files');
    expect(await storedKeys(page)).toEqual([]);
  });

  it('an HTML page by Content-Type', async () => {
    const { page } = await newPage();
    await fake(page, 'config.json', { status: 200, contentType: 'text/html', body: '<html><body>Sign in</body></html>' });
    expectError(await open(page), { name: 'HttpError', code: 'html', file: 'config.json' });
    expect(await storedKeys(page)).toEqual([]);
  });

  it('an HTML page by its first bytes, served as binary', async () => {
    const { page } = await newPage();
    await fake(page, WEIGHTS, { status: 200, contentType: 'application/octet-stream', body: '\n<!DOCTYPE html><html><body>Error</body></html>' });
    expectError(await open(page), { name: 'HttpError', code: 'html', file: WEIGHTS });
    const keys = await storedKeys(page);
    expect(keysOf(keys, modelId, WEIGHTS)).toEqual([]);
    expect(keys).not.toContainEqual(['manifest', modelId]);
  });

  it('an optional file answered by an HTML app page counts as absent', async () => {
    const { page } = await newPage();
    await fake(page, 'generation_config.json', { status: 200, contentType: 'text/html', body: '<!doctype html><div id="app"></div>' });
    expectComplete(await open(page));
    expect(await stored(page, ['manifest', modelId])).toHaveProperty('absent', ABSENT);
  });

  it('downloads the optional text files asked for where the model has them, and lists the others as absent', async () => {
    const { page } = await newPage();
    const modules = '[{"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"}]';
    await fake(page, 'modules.json', { status: 200, contentType: 'application/json', body: modules });
    const result = await open(page, { optionalTextFiles: ['modules.json', '1_Pooling/config.json'], extraFiles: ['modules.json'] });
    if (!result.ok) throw new Error(`open failed: ${result.error.message}`);
    expect(result.files['modules.json']).toEqual({ size: modules.length, sha256: sha256(new TextEncoder().encode(modules)) });
    expect(await stored(page, ['manifest', modelId])).toHaveProperty('absent', [...ABSENT, '1_Pooling/config.json']);
  });

  it('a 206 to a request without Range', async () => {
    const { page } = await newPage();
    await page.route(`**/models/stories260K/${WEIGHTS}`, (route) =>
      route.request().method() === 'GET'
        ? route.fulfill({ status: 206, headers: { 'Content-Range': `bytes 0-99/${weights.byteLength}` }, body: weights.subarray(0, 100) })
        : route.fallback(),
    );
    expectError(await open(page), { name: 'HttpError', code: 'unexpected-partial', status: 206, file: WEIGHTS });
    const keys = await storedKeys(page);
    expect(keysOf(keys, modelId, WEIGHTS)).toEqual([]);
    expect(keys).not.toContainEqual(['manifest', modelId]);
  });

  it('a storage quota too small for the model, found before downloading', async () => {
    const { page } = await newPage();
    const result = await open(page, { fakeEstimate: { usage: 50_000, quota: 100_000 } });
    expectError(result, { name: 'StorageQuotaError' });
    if (!result.ok) expect(result.error.message).toMatch(/needs 1\.0 MiB more and this site uses 0\.0 MiB of its 0\.1 MiB quota/);
    expect(await storedKeys(page)).toEqual([]);
  });
});

describe('an interrupted download resumes after its verified chunks', () => {
  /** Breaks the weights' body after `bytes`; checks what was kept; returns the chunks kept. */
  async function interrupt(page: Page, bytes: number, how: 'network' | 'abort' | 'stall'): Promise<number> {
    // Long enough for the other files on a loaded machine: only the stalled body may time out.
    const result = await open(page, { breakAfter: { file: WEIGHTS, bytes, how }, stallSeconds: how === 'stall' ? 3 : undefined });
    const expected = {
      network: { name: 'HttpError', code: 'network', file: WEIGHTS },
      // An abort ends with the signal's reason, as aborts do everywhere in the engine.
      abort: { name: 'Error', message: 'test abort' },
      stall: { name: 'HttpError', code: 'stalled', file: WEIGHTS },
    };
    expectError(result, expected[how]);
    const keys = await storedKeys(page);
    expect(keys).not.toContainEqual(['manifest', modelId]);
    const record = await stored(page, ['progress', modelId, WEIGHTS]);
    expect(record).toMatchObject({ complete: false, chunkBytes: CHUNK });
    // Only whole chunks are stored; the bytes after the last one are dropped.
    const kept = Math.floor(bytes / CHUNK);
    expect(record).toHaveProperty('chunks.length', kept);
    expect(keysOf(keys, modelId, WEIGHTS).filter((k) => Array.isArray(k) && k[0] === 'chunk')).toHaveLength(kept);
    return kept;
  }

  it('after the connection broke: one Range request for the rest', async () => {
    const { page, requests } = await newPage();
    const kept = await interrupt(page, 300_000, 'network');
    expect(kept).toBe(4);
    requests.length = 0;
    expectComplete(await open(page));
    // The small files are complete; only the absent optional ones are asked about again.
    expect(requests.filter((r) => r.method === 'GET')).toEqual([{ method: 'GET', file: WEIGHTS, range: `bytes=${kept * CHUNK}-` }]);
    expect(requests.filter((r) => r.method === 'HEAD').map((r) => r.file).sort()).toEqual([...ABSENT].sort());
  });

  it('after the transfer stalled: HttpError stalled, then one Range request for the rest', async () => {
    const { page, requests } = await newPage();
    const kept = await interrupt(page, 200_000, 'stall');
    requests.length = 0;
    expectComplete(await open(page));
    expect(requests.filter((r) => r.file === WEIGHTS)).toEqual([{ method: 'GET', file: WEIGHTS, range: `bytes=${kept * CHUNK}-` }]);
  });

  it('after the caller aborted', async () => {
    const { page, requests } = await newPage();
    const kept = await interrupt(page, 200_000, 'abort');
    requests.length = 0;
    const result = await open(page);
    expectComplete(result);
    expect(requests.filter((r) => r.file === WEIGHTS)).toEqual([{ method: 'GET', file: WEIGHTS, range: `bytes=${kept * CHUNK}-` }]);
    // Progress counts the kept chunks as loaded from the first event on.
    if (result.ok) expect(result.progress[0].loaded).toBeGreaterThanOrEqual(SMALL_FILES + kept * CHUNK);
  });

  it('starts the file over when the server answers the Range request with the whole file (200)', async () => {
    const { page, requests } = await newPage();
    await interrupt(page, 300_000, 'network');
    await page.route(`**/models/stories260K/${WEIGHTS}`, (route) =>
      route.request().headers()['range']
        ? route.fulfill({ status: 200, contentType: 'application/octet-stream', body: weights })
        : route.fallback(),
    );
    requests.length = 0;
    expectComplete(await open(page));
    expect(requests.filter((r) => r.file === WEIGHTS)).toHaveLength(1);
  });
});

it('downloads a sharded model: the index, then each shard it names', async () => {
  const { page, requests } = await newPage();
  const index = 'model.safetensors.index.json';
  const shards = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
  // The cache only stores the shards, so both may hold the same bytes.
  const indexJson = JSON.stringify({ metadata: { total_size: 2 * weights.byteLength }, weight_map: { 'model.embed_tokens.weight': shards[0], 'model.norm.weight': shards[1] } });
  await fake(page, WEIGHTS, { status: 404 });
  await fake(page, index, { status: 200, contentType: 'application/json', body: indexJson });
  for (const shard of shards) {
    await page.route(`**/models/stories260K/${shard}`, (route) => route.fulfill({ status: 200, contentType: 'application/octet-stream', body: weights }));
  }

  const result = await open(page, { extraFiles: shards });
  if (!result.ok) throw new Error(`open failed: ${result.error.name}: ${result.error.message}`);
  const { [WEIGHTS]: single, ...others } = expectedFiles;
  expect(result.files).toEqual({
    ...others,
    [index]: { size: indexJson.length, sha256: sha256(new TextEncoder().encode(indexJson)) },
    [shards[0]]: single,
    [shards[1]]: single,
  });
  const total = SMALL_FILES + indexJson.length + 2 * weights.byteLength;
  expect(result.progress[result.progress.length - 1]).toMatchObject({ loaded: total, total });
  expect(await stored(page, ['manifest', modelId])).toMatchObject({ totalBytes: total, absent: [...ABSENT, WEIGHTS] });

  requests.length = 0;
  expect((await open(page, { extraFiles: shards })).ok).toBe(true);
  expect(requests).toEqual([]);
});

it('lists complete and incomplete models and deletes each entirely', async () => {
  const { page } = await newPage();
  expectComplete(await open(page));
  expectError(await open(page, { modelId: 'partial', breakAfter: { file: WEIGHTS, bytes: 150_000, how: 'network' } }), { code: 'network' });

  const list = await page.evaluate(() => window.__storage?.list());
  expect(list).toEqual([
    { modelId, url: modelId, totalBytes: TOTAL, files: PRESENT, complete: true, date: expect.any(String) },
    {
      modelId: 'partial',
      url: modelId,
      totalBytes: SMALL_FILES + 2 * CHUNK,
      files: expect.arrayContaining(PRESENT),
      complete: false,
      date: expect.any(String),
    },
  ]);

  await page.evaluate((id) => window.__storage?.remove(id), modelId);
  const keys = await storedKeys(page);
  expect(keysOf(keys, modelId)).toEqual([]);
  expect(keysOf(keys, 'partial').length).toBeGreaterThan(0);
  expect(await page.evaluate(() => window.__storage?.list())).toMatchObject([{ modelId: 'partial', complete: false }]);

  await page.evaluate(() => window.__storage?.remove('partial'));
  expect(await storedKeys(page)).toEqual([]);
  expect(await page.evaluate(() => window.__storage?.list())).toEqual([]);
});

it('two tabs opening the same model download it once: the second waits for the lock and reads the cache', async () => {
  // Two pages of one browser context share its storage and its locks, as two tabs do.
  const context = await harness.browser.newContext();
  const [first, second] = [await context.newPage(), await context.newPage()];
  const [firstRequests, secondRequests] = [await load(first), await load(second)];
  const [a, b] = await Promise.all([open(first), open(second)]);
  expectComplete(a);
  expectComplete(b);
  const weightGets = [...firstRequests, ...secondRequests].filter((r) => r.method === 'GET' && r.file === WEIGHTS);
  expect(weightGets).toHaveLength(1);
  // One of the two made no request at all.
  expect(Math.min(firstRequests.length, secondRequests.length)).toBe(0);
  await context.close();
});
