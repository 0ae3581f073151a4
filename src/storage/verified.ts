/**
 * Reading the cache: every chunk is checked against its size and SHA-256 when read, not before (a model is
 * read once at load, so each byte is read and hashed once); a damaged or missing one is fetched again with a
 * Range request for exactly its bytes.
 */
import type { ByteSource } from '../formats/sources';
import type { ModelFiles } from '../model/files';
import { parseContentRange } from '../net/http';
import { deleteChunk, readChunk, writeChunk, type CachedFile, type Manifest } from './cache';
import { guardQuota, request, throwIfAborted, type Context } from './context';
import { IntegrityError } from './errors';
import { sha256Hex } from './hash';

/** Chunks a cached model keeps in memory: tensors are read roughly in file order and may straddle two chunks. */
const KEEP_CHUNKS = 2;

/** ModelFiles over the manifest's files; every chunk is verified (and repaired) as it is read. */
export function cachedFiles(ctx: Context, manifest: Manifest): ModelFiles {
  const files = new Map(manifest.files.map((f) => [f.name, f]));
  const recent = new Map<string, Promise<Uint8Array<ArrayBuffer>>>();
  const chunk = (file: CachedFile, index: number, offset: number): Promise<Uint8Array<ArrayBuffer>> => {
    const key = `${index}:${file.name}`;
    let p = recent.get(key);
    if (p) recent.delete(key);
    else {
      const loading = loadChunk(ctx, file, index, offset);
      loading.catch(() => {
        if (recent.get(key) === loading) recent.delete(key);
      });
      p = loading;
    }
    recent.set(key, p);
    for (const old of recent.keys()) {
      if (recent.size <= KEEP_CHUNKS) break;
      recent.delete(old);
    }
    return p;
  };
  const read = async (file: CachedFile, offset: number, length: number): Promise<Uint8Array<ArrayBuffer>> => {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > file.size) {
      throw new RangeError(`${file.name}: read of ${length} bytes at ${offset} is outside the ${file.size}-byte file`);
    }
    const parts: Array<{ bytes: Uint8Array<ArrayBuffer>; at: number }> = [];
    let start = 0;
    for (let i = 0; i < file.chunks.length && start < offset + length; i++) {
      const end = start + file.chunks[i].size;
      if (end > offset) {
        const bytes = await chunk(file, i, start);
        const from = Math.max(offset, start) - start;
        parts.push({ bytes: bytes.subarray(from, Math.min(end, offset + length) - start), at: Math.max(offset, start) - offset });
      }
      start = end;
    }
    if (parts.length === 1) return parts[0].bytes;
    const out = new Uint8Array(length);
    for (const p of parts) out.set(p.bytes, p.at);
    return out;
  };
  return {
    name: manifest.url,
    async text(name) {
      const file = files.get(name);
      return file === undefined ? undefined : new TextDecoder().decode(await read(file, 0, file.size));
    },
    async bytes(name) {
      const file = files.get(name);
      if (file === undefined) return undefined;
      const source: ByteSource = { name: file.name, size: file.size, read: (offset, length) => read(file, offset, length) };
      return source;
    },
  };
}

export async function readWhole(ctx: Context, file: CachedFile): Promise<Uint8Array<ArrayBuffer>> {
  const out = new Uint8Array(file.size);
  let offset = 0;
  for (let i = 0; i < file.chunks.length; i++) {
    out.set(await loadChunk(ctx, file, i, offset), offset);
    offset += file.chunks[i].size;
  }
  return out;
}

/** A chunk from IndexedDB after its size and SHA-256 check; a damaged or missing one is fetched again. */
async function loadChunk(ctx: Context, file: CachedFile, index: number, offset: number): Promise<Uint8Array<ArrayBuffer>> {
  throwIfAborted(ctx);
  const expected = file.chunks[index];
  const stored = await readChunk(ctx.modelId, file.name, index);
  let problem: string;
  if (stored === undefined) problem = 'missing';
  else if (stored.byteLength !== expected.size) problem = `${stored.byteLength} bytes instead of ${expected.size}`;
  else {
    const bytes = new Uint8Array(stored);
    if ((await sha256Hex(bytes)) === expected.sha256) return bytes;
    problem = 'SHA-256 mismatch';
  }
  return repairChunk(ctx, file, index, offset, problem);
}

async function repairChunk(ctx: Context, file: CachedFile, index: number, offset: number, problem: string): Promise<Uint8Array<ArrayBuffer>> {
  const expected = file.chunks[index];
  await deleteChunk(ctx.modelId, file.name, index);
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await fetchRange(ctx, file.name, offset, expected.size);
    if ((await sha256Hex(bytes)) !== expected.sha256) {
      throw new Error('the bytes downloaded again have another SHA-256 (the file changed on the server?)');
    }
  } catch (e) {
    if (ctx.signal?.aborted) throw e;
    throw new IntegrityError(ctx.modelId, file.name, index, problem, { cause: e });
  }
  await guardQuota(ctx, expected.size, () => writeChunk(ctx.modelId, file.name, index, bytes));
  return bytes;
}

/** Exactly `length` bytes at `offset`, by one Range request that must be answered 206 with that range. */
async function fetchRange(ctx: Context, file: string, offset: number, length: number): Promise<Uint8Array<ArrayBuffer>> {
  const last = offset + length - 1;
  const res = await request(ctx, file, { range: [offset, last] });
  await res.check();
  const range = parseContentRange(res.header('Content-Range'));
  if (res.status !== 206 || typeof range !== 'object' || range.start !== offset || range.end !== last) {
    await res.discard();
    throw res.error('bad-range', `asked for bytes ${offset}-${last} and got ${res.status} with Content-Range ${JSON.stringify(res.header('Content-Range'))}.`);
  }
  const body = await res.bytes();
  if (body.byteLength !== length) throw res.error('short-body', `asked for ${length} bytes at ${offset} and got ${body.byteLength}.`);
  return body;
}
