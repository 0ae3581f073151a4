/**
 * The Hugging Face access token goes to https://huggingface.co and nowhere else: the fetch wrapper adds it for
 * that origin only (not its CDN subdomains, another scheme or port, look-alike hosts, or a URL that merely
 * mentions it), and Node's fetch drops it when a redirect leaves the origin, as HF's redirects to its CDN do.
 * A 401/403 from huggingface.co is a GatedModelError that says to accept the license and add a token.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccessTokenError, GatedModelError, HttpError, huggingFaceFetch, isHuggingFaceUrl } from '../../src/net';
import { urlFiles } from '../../src/model/files';
import { describeError } from '../../src/errors';

const TOKEN = 'hf_TestToken0123456789';

/** A fetch that records each request's URL and Authorization header and answers 200 with `body`. */
function recordingFetch(body = '{}') {
  const seen: { url: string; authorization: string | null; range: string | null }[] = [];
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
    seen.push({ url, authorization: headers.get('Authorization'), range: headers.get('Range') });
    return new Response(body, { status: 200, headers: { 'Content-Type': 'application/json' } });
  };
  return { fetch, seen };
}

describe('huggingFaceFetch', () => {
  it('adds the token for https://huggingface.co only', async () => {
    const { fetch, seen } = recordingFetch();
    const authed = huggingFaceFetch(` ${TOKEN}\n`, fetch);
    const hf = 'https://huggingface.co/google/gemma-3-1b-it/resolve/main/config.json';
    const others = [
      'http://huggingface.co/google/gemma-3-1b-it/resolve/main/config.json',
      'https://huggingface.co:8443/google/gemma-3-1b-it/resolve/main/config.json',
      'https://cdn-lfs.huggingface.co/repos/ab/cd/model.safetensors',
      'https://cas-bridge.xethub.hf.co/xet-bridge-us/model.safetensors',
      'https://huggingface.co.evil.example/google/gemma-3-1b-it/resolve/main/config.json',
      'https://evil.example/https://huggingface.co/google/gemma-3-1b-it/resolve/main/config.json',
      'https://huggingface.co@evil.example/google/gemma-3-1b-it/resolve/main/config.json',
      'https://evil.example/?redirect=https://huggingface.co/',
    ];
    await authed(hf);
    await authed(new URL(hf), { headers: { Range: 'bytes=0-7' } });
    await authed(new Request(hf, { headers: { Range: 'bytes=8-9' } }));
    for (const url of others) await authed(url, { headers: { Range: 'bytes=0-7' } });
    const bearer = `Bearer ${TOKEN}`;
    expect(seen.slice(0, 3)).toEqual([
      { url: hf, authorization: bearer, range: null },
      { url: hf, authorization: bearer, range: 'bytes=0-7' },
      { url: hf, authorization: bearer, range: 'bytes=8-9' },
    ]);
    expect(seen.slice(3)).toEqual(others.map((url) => ({ url, authorization: null, range: 'bytes=0-7' })));
    expect(others.some(isHuggingFaceUrl)).toBe(false);
  });

  it('without a token is the fetch it wraps; a token a header cannot carry is an AccessTokenError', () => {
    const { fetch } = recordingFetch();
    expect(huggingFaceFetch(undefined, fetch)).toBe(fetch);
    expect(huggingFaceFetch('  ', fetch)).toBe(fetch);
    for (const bad of ['hf_abc def', 'hf_abc\ndef', 'hf_é']) expect(() => huggingFaceFetch(bad, fetch)).toThrow(AccessTokenError);
  });
});

describe('redirects and refusals', () => {
  let origin: Server;
  let other: Server;
  let originUrl: string;
  let otherUrl: string;
  const received: Record<string, IncomingHttpHeaders> = {};

  beforeAll(async () => {
    const listen = (s: Server) => new Promise<string>((resolve) => s.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)));
    other = createServer((req, res) => {
      received[`other${req.url}`] = req.headers;
      res.end('cdn bytes');
    });
    origin = createServer((req, res) => {
      received[`origin${req.url}`] = req.headers;
      // A different port is a different origin, as HF's CDN host is.
      if (req.url === '/to-other') return res.writeHead(302, { Location: `${otherUrl}/file` }).end();
      if (req.url === '/to-same') return res.writeHead(302, { Location: '/file' }).end();
      res.end('origin bytes');
    });
    originUrl = await listen(origin);
    otherUrl = await listen(other);
  });
  afterAll(() => {
    origin.close();
    other.close();
  });

  it("Node's fetch drops Authorization on a redirect to another origin and keeps it on the same origin", async () => {
    const headers = { Authorization: `Bearer ${TOKEN}` };
    expect(await (await fetch(`${originUrl}/to-other`, { headers })).text()).toBe('cdn bytes');
    expect(received['origin/to-other'].authorization).toBe(`Bearer ${TOKEN}`);
    expect(received['other/file'].authorization).toBeUndefined();
    expect(await (await fetch(`${originUrl}/to-same`, { headers })).text()).toBe('origin bytes');
    expect(received['origin/file'].authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('a 401 or 403 from huggingface.co is a GatedModelError naming the repo page; with the token the file loads', async () => {
    // A stand-in for huggingface.co: the gated repo answers 401 without the token, 403 for a wrong one.
    const hf: typeof globalThis.fetch = async (_url, init) => {
      const auth = new Headers(init?.headers).get('Authorization');
      const status = auth === null ? 401 : auth === `Bearer ${TOKEN}` ? 200 : 403;
      return new Response(status === 200 ? '{"model_type":"gemma3_text"}' : 'Access to model google/gemma-3-1b-it is restricted.', { status });
    };
    const repo = 'https://huggingface.co/google/gemma-3-1b-it';
    for (const token of [undefined, 'hf_wrong']) {
      const files = urlFiles(repo, { fetch: huggingFaceFetch(token, hf) });
      for (const read of [() => files.text('config.json'), () => files.bytes('model.safetensors')]) {
        const error = await read().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(GatedModelError);
        expect(error).toBeInstanceOf(HttpError);
        const gated = error as GatedModelError;
        expect(gated.status).toBe(token === undefined ? 401 : 403);
        expect(gated.repoUrl).toBe(repo);
        expect(gated.message).toContain(`accept the model's license on ${repo}`);
        expect(gated.message).toContain('access token');
        expect(describeError(gated).title).toBe('This model needs a Hugging Face access token');
      }
    }
    expect(await urlFiles(repo, { fetch: huggingFaceFetch(TOKEN, hf) }).text('config.json')).toBe('{"model_type":"gemma3_text"}');
    // Elsewhere a 401 stays a plain HttpError: the advice about licenses is Hugging Face's.
    const elsewhere = urlFiles(originUrl, { fetch: async () => new Response('no', { status: 401 }) });
    const plain = await elsewhere.text('config.json').catch((e: unknown) => e);
    expect(plain).toBeInstanceOf(HttpError);
    expect(plain).not.toBeInstanceOf(GatedModelError);
  });
});
