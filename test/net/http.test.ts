/**
 * The network layer against a local HTTP server that misbehaves on purpose: stalls before and during the
 * body, text files over the cap (declared and undeclared), 404 hints, and aborts through a fetch that
 * ignores its signal. After each failure the same server still serves a good request.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchSource, fetchText, HttpError, MAX_TEXT_BYTES, type HttpErrorCode } from '../../src/net';
import { urlFiles } from '../../src/model/files';
import { describeError } from '../../src/errors';

let server: Server;
let base: string;
/** Responses held open by the stalling routes, ended after each test so the server can close. */
const held: ServerResponse[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    switch (req.url) {
      case '/config.json':
        res.writeHead(200, { 'Content-Type': 'application/json' });
        return res.end('{"ok":true}');
      case '/no-answer.json':
        held.push(res);
        return;
      case '/stalls-midway.bin':
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': '100' });
        res.write(new Uint8Array(10));
        held.push(res);
        return;
      case '/huge-declared.json':
        // Declares 3 GB and never sends it: the cap must refuse it from the header alone.
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(3e9) });
        res.flushHeaders();
        held.push(res);
        return;
      case '/huge-chunked.json':
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write('x'.repeat(4096));
        res.end('x'.repeat(4096));
        return;
      default:
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        return res.end('not found');
    }
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const res of held) res.destroy();
  server.closeAllConnections();
  await new Promise((ok) => server.close(ok));
});

async function expectHttp(action: Promise<unknown>, code: HttpErrorCode): Promise<HttpError> {
  const e = await action.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, String(e)).toBeInstanceOf(HttpError);
  expect((e as HttpError).code).toBe(code);
  return e as HttpError;
}

async function stillServes(): Promise<void> {
  expect(await fetchText(`${base}/config.json`)).toBe('{"ok":true}');
}

describe('stall timeout', () => {
  it('no answer for stallSeconds is HttpError stalled (retryable), and the next request works', async () => {
    const t0 = performance.now();
    const err = await expectHttp(fetchText(`${base}/no-answer.json`, { stallSeconds: 0.3, file: 'config.json' }), 'stalled');
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(err.retryable).toBe(true);
    expect(err.file).toBe('config.json');
    expect(err.message).toMatch(/no answer for 0\.3 s/);
    await stillServes();
  });

  it('a body that stops midway is HttpError stalled, not a hang', async () => {
    const err = await expectHttp(fetchSource(`${base}/stalls-midway.bin`, { stallSeconds: 0.3 }), 'stalled');
    expect(err.message).toMatch(/no bytes arrived for 0\.3 s/);
    await stillServes();
  });

  it('an abort ends a wait at once with the signal reason, even through a fetch that ignores its signal', async () => {
    const deaf: typeof fetch = () => new Promise<Response>(() => undefined);
    const ctl = new AbortController();
    const reason = new Error('stop now');
    setTimeout(() => ctl.abort(reason), 50);
    await expect(fetchText(`${base}/config.json`, { fetch: deaf, signal: ctl.signal })).rejects.toBe(reason);
    await stillServes();
  });
});

describe('size cap for text files', () => {
  it(`a text file declaring 3 GB is refused before its body, stating the ${MAX_TEXT_BYTES / 2 ** 20} MiB cap`, async () => {
    const err = await expectHttp(urlFiles(base).text('huge-declared.json'), 'too-large');
    expect(err.message).toContain('3,000,000,000 bytes, over the 64 MiB cap for text files');
    expect(err.file).toBe('huge-declared.json');
    await stillServes();
  });

  it('a text file without Content-Length is cut off at the cap while streaming', async () => {
    const err = await expectHttp(fetchText(`${base}/huge-chunked.json`, { maxBytes: 5000 }), 'too-large');
    expect(err.message).toContain('more than 5,000 bytes');
    await stillServes();
  });

  it('a missing optional text file is undefined, not an error', async () => {
    expect(await urlFiles(base).text('generation_config.json')).toBeUndefined();
  });
});

describe('messages and hints', () => {
  it('a 404 says to check the URL, never that the download resumes', async () => {
    const err = await expectHttp(fetchSource(`${base}/model.safetensors`), 'status');
    expect(err.status).toBe(404);
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/No file at this URL/);
    expect(err.message).not.toMatch(/resume/);
    const shown = describeError(err);
    expect(shown.kind).toBe('download');
    expect(shown.hint).not.toMatch(/resume/);
    expect(describeError(new HttpError('stalled', 200, `${base}/x`, 'no bytes.')).hint).toMatch(/resumes/);
  });
});
