/** A model folder on disk (Node): text files read whole (at most MAX_TEXT_BYTES each), weights read by range through a file handle. */
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ByteSource } from '../formats/sources';
import { MAX_TEXT_BYTES } from '../net';
import { ModelFileTooLargeError, type ModelFiles } from './files';

function isMissing(e: unknown): boolean {
  return (e as { code?: unknown }).code === 'ENOENT';
}

export function folderFiles(dir: string): ModelFiles {
  return {
    name: dir,
    async text(file) {
      try {
        const path = join(dir, file);
        const { size } = await stat(path);
        if (size > MAX_TEXT_BYTES) throw new ModelFileTooLargeError(dir, file, size);
        return await readFile(path, 'utf8');
      } catch (e) {
        if (isMissing(e)) return undefined;
        throw e;
      }
    },
    async bytes(file): Promise<ByteSource | undefined> {
      const path = join(dir, file);
      let size: number;
      try {
        size = (await stat(path)).size;
      } catch (e) {
        if (isMissing(e)) return undefined;
        throw e;
      }
      return {
        name: path,
        size,
        async read(offset, length) {
          if (offset < 0 || length < 0 || offset + length > size) {
            throw new RangeError(`${path}: read of ${length} bytes at ${offset} is outside the ${size}-byte file`);
          }
          const handle = await open(path, 'r');
          try {
            const out = new Uint8Array(length);
            let done = 0;
            while (done < length) {
              const { bytesRead } = await handle.read(out, done, length - done, offset + done);
              if (bytesRead === 0) throw new RangeError(`${path} ended early (was it replaced while loading?)`);
              done += bytesRead;
            }
            return out;
          } finally {
            await handle.close();
          }
        },
      };
    },
  };
}
