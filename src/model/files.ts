/**
 * Where a model's files come from: a Hugging Face repo or any base URL, files in memory, or (Node only,
 * `files-node.ts`) a folder. Each gives text files whole and weight files as random-access byte sources.
 */
import { bytesSource, type ByteSource } from '../formats/sources';
import { fetchSource, fetchText, HttpError, MAX_TEXT_BYTES, type HttpOptions } from '../net';
import { formatMiB } from '../net/http';

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
 * A text file (config, tokenizer, index, template) over MAX_TEXT_BYTES in a model folder: refused before it is
 * read, as over HTTP (a multi-GB config.json would otherwise be read whole into memory).
 */
export class ModelFileTooLargeError extends Error {
  override readonly name = 'ModelFileTooLargeError';
  constructor(
    readonly location: string,
    readonly file: string,
    readonly size: number,
    readonly maxBytes = MAX_TEXT_BYTES,
  ) {
    super(`${location}: ${file} is ${formatMiB(size)}, over the ${formatMiB(maxBytes)} cap for text files. Is it the right file?`);
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

/** Files over HTTP: text files whole (at most MAX_TEXT_BYTES each), weights by Range requests; all watched for stalls. */
export function urlFiles(url: string, options: HttpOptions = {}): ModelFiles {
  const resolve = resolveModelUrl(url);
  return {
    name: url,
    text: (file) => fetchText(resolve(file), { ...options, file }),
    async bytes(file) {
      try {
        return await fetchSource(resolve(file), options);
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
