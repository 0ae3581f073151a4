/**
 * Where a model's files come from: a Hugging Face repo or any base URL, files in memory, or (Node only,
 * `files-node.ts`) a folder. Each gives text files whole and weight files as random-access byte sources.
 */
import { HttpError } from '../formats/errors';
import { bytesSource, fetchSource, type ByteSource } from '../formats/sources';

export interface ModelFiles {
  /** For messages: the folder or URL. */
  readonly name: string;
  /** A text file, or undefined when it does not exist. */
  text(file: string): Promise<string | undefined>;
  /** A binary file as a byte source, or undefined when it does not exist. */
  bytes(file: string): Promise<ByteSource | undefined>;
}

/** A required file is missing from the model folder or repo. */
export class ModelFileMissingError extends Error {
  override readonly name = 'ModelFileMissingError';
  constructor(
    readonly location: string,
    readonly file: string,
  ) {
    super(`${location} has no ${file}. A model folder needs config.json, tokenizer.json and model.safetensors (or model.safetensors.index.json with its shards).`);
  }
}

/**
 * `https://huggingface.co/<org>/<repo>` (optionally `/tree/<rev>`) reads `<repo>/resolve/<rev>/<file>`;
 * any other URL is a base that files are resolved against.
 */
export function resolveModelUrl(url: string): (file: string) => string {
  const hf = /^(https:\/\/huggingface\.co\/[^/]+\/[^/]+?)\/?(?:\/(?:tree|resolve)\/([^/]+)\/?)?$/.exec(url);
  if (hf) return (file) => `${hf[1]}/resolve/${hf[2] ?? 'main'}/${file}`;
  const base = url.endsWith('/') ? url : `${url}/`;
  return (file) => new URL(file, base).href;
}

export function urlFiles(url: string, options: { fetch?: typeof fetch; signal?: AbortSignal } = {}): ModelFiles {
  const resolve = resolveModelUrl(url);
  const doFetch = options.fetch ?? globalThis.fetch;
  return {
    name: url,
    async text(file) {
      const href = resolve(file);
      let res: Response;
      try {
        res = await doFetch(href, { signal: options.signal });
      } catch (e) {
        if ((e as { name?: unknown }).name === 'AbortError') throw e;
        throw new HttpError('network', 0, href, `request failed: ${(e as Error).message}`, { cause: e });
      }
      if (res.status === 404) return undefined;
      if (!res.ok) throw new HttpError('status', res.status, href, `HTTP ${res.status} ${res.statusText}`);
      return res.text();
    },
    async bytes(file) {
      try {
        return await fetchSource(resolve(file), { fetch: doFetch, signal: options.signal });
      } catch (e) {
        if (e instanceof HttpError && e.status === 404) return undefined;
        throw e;
      }
    },
  };
}

export function memoryFiles(name: string, files: ReadonlyMap<string, string | Uint8Array>): ModelFiles {
  return {
    name,
    text: async (file) => {
      const f = files.get(file);
      return f === undefined ? undefined : typeof f === 'string' ? f : new TextDecoder().decode(f);
    },
    bytes: async (file) => {
      const f = files.get(file);
      return f === undefined ? undefined : bytesSource(typeof f === 'string' ? new TextEncoder().encode(f) : f, file);
    },
  };
}
