/**
 * Random-access byte sources for weight files: memory or a Blob/File here; an HTTP URL read with Range
 * requests in `net/fetch-source.ts`. A reader asks for one tensor's bytes at a time, so a model larger than
 * one ArrayBuffer can be streamed.
 */

export interface ByteSource {
  /** A name for messages: a file name or a URL without its query string. */
  readonly name: string;
  /** Total size in bytes (a non-negative safe integer). */
  readonly size: number;
  /**
   * Exactly `length` bytes starting at `offset` (0 ≤ offset, offset + length ≤ size; a RangeError otherwise).
   * The result may be a view into memory the source keeps (e.g. the caller's buffer): treat it as read-only.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** Throws a RangeError unless the read lies inside the source. */
export function checkRange(source: { name: string; size: number }, offset: number, length: number): void {
  if (
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(length) ||
    offset < 0 ||
    length < 0 ||
    offset + length > source.size
  ) {
    throw new RangeError(
      `${source.name}: read of ${length} bytes at ${offset} is outside the ${source.size}-byte source`,
    );
  }
}

/** A source over bytes already in memory. Reads return views (no copies). */
export function bytesSource(data: ArrayBuffer | ArrayBufferView, name = 'memory'): ByteSource {
  const bytes =
    data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const source: ByteSource = {
    name,
    size: bytes.byteLength,
    read: async (offset, length) => {
      checkRange(source, offset, length);
      return bytes.subarray(offset, offset + length);
    },
  };
  return source;
}

/** A source over a Blob or File (e.g. from `<input type="file">`); only the slices asked for are read. */
export function blobSource(blob: Blob, name?: string): ByteSource {
  const fileName = 'name' in blob && typeof blob.name === 'string' && blob.name ? blob.name : 'blob';
  const source: ByteSource = {
    name: name ?? fileName,
    size: blob.size,
    read: async (offset, length) => {
      checkRange(source, offset, length);
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
  };
  return source;
}
