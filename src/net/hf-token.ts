/**
 * A Hugging Face access token for gated repos (Llama 3.2, Gemma 3): sent as `Authorization: Bearer` to
 * https://huggingface.co and nowhere else. HF answers a file request with a redirect to its CDN (a signed URL
 * on another host, which needs no token); fetch drops Authorization on a cross-origin redirect (Fetch
 * standard, HTTP-redirect fetch), so the token never follows it there.
 */

/** The one origin an access token goes to. */
export const HUGGING_FACE_ORIGIN = 'https://huggingface.co';

/** A token that cannot be sent: empty, or with characters a header value cannot hold. */
export class AccessTokenError extends Error {
  override readonly name = 'AccessTokenError';
  constructor(detail: string) {
    super(`Hugging Face access token: ${detail}`);
  }
}

/** Whether `url` is on https://huggingface.co itself (not a subdomain, another port, or another scheme). */
export function isHuggingFaceUrl(url: string | URL): boolean {
  try {
    return new URL(url).origin === HUGGING_FACE_ORIGIN;
  } catch {
    return false;
  }
}

/** The token trimmed (pasted tokens often carry a newline), checked to be one run of printable ASCII. */
export function checkAccessToken(token: string): string {
  const trimmed = token.trim();
  if (trimmed === '') throw new AccessTokenError('it is empty');
  if (!/^[\x21-\x7e]+$/.test(trimmed)) throw new AccessTokenError('it may hold only printable ASCII characters without spaces');
  return trimmed;
}

/**
 * `base` (default the global fetch) with `Authorization: Bearer <token>` added to requests for huggingface.co;
 * other URLs go out untouched. No token (undefined or empty): `base` itself.
 */
export function huggingFaceFetch(token: string | undefined, base?: typeof globalThis.fetch): typeof globalThis.fetch {
  const doFetch = base ?? ((input, init) => globalThis.fetch(input, init));
  if (token === undefined || token.trim() === '') return doFetch;
  const bearer = `Bearer ${checkAccessToken(token)}`;
  return (input, init) => {
    const url = input instanceof Request ? input.url : input;
    if (!isHuggingFaceUrl(url)) return doFetch(input, init);
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
    headers.set('Authorization', bearer);
    return doFetch(input, { ...init, headers });
  };
}
