import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelBytes } from '../models';
import { fetchSource, HttpError, type HttpErrorCode } from '../../src/net';
import { DTYPE_BYTES, MAX_HEADER_BYTES, SafetensorsError, openSafetensors, openShardedSafetensors, parseSafetensorsHeader, parseSafetensorsIndex, readHeaderLength, type Dtype, type SafetensorsErrorCode } from '../../src/formats/safetensors';
import { writeSafetensors, type TensorToWrite } from '../../src/dev/safetensors-writer';
import { blobSource, bytesSource, type ByteSource } from '../../src/formats/sources';
import { bf16BitsToF32, toF16 } from '../../src/gpu/f16';

// ---------------------------------------------------------------------------------------------------------
// Helpers

/** A file with a hand-written header: `length` overrides the u64 (default: the padded header's length). */
function rawFile(header: string | Uint8Array, data: Uint8Array | number = 0, opts: { pad?: boolean; length?: bigint } = {}): Uint8Array {
  let json = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  if (opts.pad ?? true) {
    const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, opts.length ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

/** A header with the given entries, as JSON text. */
function header(entries: Record<string, unknown>): string {
  return JSON.stringify(entries);
}

const f32Entry = (begin: number, count: number) => ({ dtype: 'F32', shape: [count], data_offsets: [begin, begin + 4 * count] });

async function open(bytes: Uint8Array) {
  return openSafetensors(bytesSource(bytes, 'test.safetensors'));
}

async function expectCode(action: Promise<unknown> | (() => unknown), code: SafetensorsErrorCode): Promise<SafetensorsError> {
  try {
    await (typeof action === 'function' ? action() : action);
  } catch (e) {
    expect(e, String(e)).toBeInstanceOf(SafetensorsError);
    const err = e as SafetensorsError;
    expect(err.code, err.message).toBe(code);
    return err;
  }
  throw new Error(`expected a SafetensorsError with code ${code}, but it succeeded`);
}

async function expectHttp(action: Promise<unknown>, code: HttpErrorCode, status?: number): Promise<HttpError> {
  try {
    await action;
  } catch (e) {
    expect(e, String(e)).toBeInstanceOf(HttpError);
    const err = e as HttpError;
    expect(err.code, err.message).toBe(code);
    if (status !== undefined) expect(err.status).toBe(status);
    return err;
  }
  throw new Error(`expected an HttpError with code ${code}, but it succeeded`);
}

/** A source that records what was read, to check nothing large or unneeded is read. */
function spySource(bytes: Uint8Array): ByteSource & { reads: [number, number][] } {
  const inner = bytesSource(bytes, 'spy.safetensors');
  const reads: [number, number][] = [];
  return {
    name: inner.name,
    size: inner.size,
    reads,
    read: (offset, length) => {
      reads.push([offset, length]);
      return inner.read(offset, length);
    },
  };
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** One small tensor of each dtype, with data whose bytes are all different. */
function everyDtype(): TensorToWrite[] {
  const out: TensorToWrite[] = [];
  let seed = 1;
  for (const dtype of Object.keys(DTYPE_BYTES) as Dtype[]) {
    const shape = [2, 3];
    const bytes = new Uint8Array(6 * DTYPE_BYTES[dtype]);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (seed = (seed * 73 + 11) & 0xff);
    if (dtype === 'BOOL') bytes.forEach((_, i) => (bytes[i] = i & 1));
    if (dtype === 'F64' || dtype === 'F32' || dtype === 'F16' || dtype === 'BF16') {
      // Keep floats finite and free of NaN so comparisons are exact.
      const view = dtype === 'F64' ? new Float64Array(bytes.buffer) : null;
      if (view) view.set([1.5, -2, 1e300, -0, 3.25, 7]);
      if (dtype === 'F32') new Float32Array(bytes.buffer).set([1.5, -2, 1e30, -0, 3.25, 7]);
      if (dtype === 'F16') new Uint16Array(bytes.buffer).set(toF16([1.5, -2, 65504, -0, 3.25, 7]));
      if (dtype === 'BF16') new Uint16Array(bytes.buffer).set([0x3fc0, 0xc000, 0x7f7f, 0x8000, 0x4050, 0x0001]);
    }
    out.push({ name: `t.${dtype}`, dtype, shape, data: bytes });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------

describe('safetensors: the 8-byte header length', () => {
  it('rejects files under 8 bytes (too-small)', async () => {
    for (let n = 0; n < 8; n++) await expectCode(open(new Uint8Array(n)), 'too-small');
    expect(() => readHeaderLength(new Uint8Array(4), 4)).toThrow(SafetensorsError);
  });

  it('rejects a header length over 100,000,000 or near 2^64 before reading it (header-too-large)', async () => {
    const lengths = [BigInt(MAX_HEADER_BYTES + 1), 2n ** 32n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 32n + 2n];
    for (const length of lengths) {
      const src = spySource(rawFile('{}', 0, { length }));
      const err = await expectCode(openSafetensors(src), 'header-too-large');
      expect(err.message).toContain(length.toString());
      expect(src.reads).toEqual([[0, 8]]); // nothing but the 8 bytes was read
    }
  });

  it('names a Git LFS pointer file as such (lfs-pointer), not as a huge header length', async () => {
    const pointer =
      'version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 2336927755\n';
    const err = await expectCode(openSafetensors(bytesSource(new TextEncoder().encode(pointer), 'model.safetensors')), 'lfs-pointer');
    expect(err.message).toMatch(/Git LFS pointer/);
    expect(err.message).not.toMatch(/header length/);
    // A real file still opens after it.
    expect((await openSafetensors(bytesSource(writeSafetensors([{ name: 'w', dtype: 'F32', shape: [1], data: new Float32Array([1]) }])))).tensors.size).toBe(1);
  });

  it('rejects 8 + N past the end of the file (header-out-of-bounds)', async () => {
    const src = spySource(rawFile('{}', 0, { length: 1000n }));
    await expectCode(openSafetensors(src), 'header-out-of-bounds');
    expect(src.reads).toEqual([[0, 8]]);
    await expectCode(open(rawFile('{}', 0, { length: BigInt(MAX_HEADER_BYTES) })), 'header-out-of-bounds');
    // Directly: a header that claims more than the file holds.
    await expectCode(() => parseSafetensorsHeader(new TextEncoder().encode('{}'), 9), 'header-out-of-bounds');
  });

  it('reads the exact limit as a length, not as too large', async () => {
    // 100,000,000 itself is allowed; the file is just too short for it.
    await expectCode(open(rawFile('{}', 0, { length: BigInt(MAX_HEADER_BYTES) })), 'header-out-of-bounds');
  });
});

describe('safetensors: header text', () => {
  it('rejects a header that is not UTF-8 (header-not-utf8)', async () => {
    const bad = new Uint8Array([...new TextEncoder().encode('{"a\xff'), 0xff, 0xfe, ...new TextEncoder().encode('":1}')]);
    await expectCode(open(rawFile(bad)), 'header-not-utf8');
    // An overlong encoding of "{" and a lone surrogate encoded in UTF-8 (CESU) are not UTF-8 either.
    await expectCode(open(rawFile(new Uint8Array([0xc1, 0xbb, 0x7d]))), 'header-not-utf8');
    await expectCode(open(rawFile(new Uint8Array([0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x3a, 0x31, 0x7d]))), 'header-not-utf8');
  });

  it('rejects a header that is not JSON (header-not-json)', async () => {
    for (const text of ['{', '{"a":', '{"a":{"dtype":"F32",}}', "{'a':1}", '{"a":NaN}']) {
      await expectCode(open(rawFile(text)), 'header-not-json');
    }
  });

  it('rejects escaped lone surrogates, which are not Unicode (header-not-json)', async () => {
    await expectCode(open(rawFile('{"\\ud800x":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}')), 'header-not-json');
    await expectCode(open(rawFile('{"__metadata__":{"k":"\\udc00"}}')), 'header-not-json');
  });

  it('rejects a header that does not start with "{" (header-bad-start)', async () => {
    for (const text of [' {}', '[]', '\n{}', '\ufeff{}', '"x"', '']) {
      await expectCode(open(rawFile(text, 0, { pad: false })), 'header-bad-start');
    }
  });

  it('accepts padding with spaces only (bad-padding)', async () => {
    const ok = await open(rawFile('{}' + ' '.repeat(13), 0, { pad: false }));
    expect(ok.tensors.size).toBe(0);
    for (const pad of ['\n', '\t', '\r', '  \n ', '\0\0\0', 'x', ' {}', '}']) {
      await expectCode(open(rawFile('{}' + pad, 0, { pad: false })), 'bad-padding');
    }
  });
});

describe('safetensors: entries', () => {
  const t = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
  const fileWith = (entry: unknown) => rawFile(header({ t: entry }), 8);

  it('accepts a well-formed entry', async () => {
    const f = await open(fileWith(t));
    expect(f.tensors.get('t')).toMatchObject({ name: 't', dtype: 'F32', shape: [2], byteLength: 8 });
  });

  it('rejects entries that are not { dtype, shape, data_offsets } with the right types (bad-entry)', async () => {
    const bad: unknown[] = [
      null,
      [],
      'F32',
      1,
      { ...t, extra: 1 },
      { dtype: 'F32', shape: [2] },
      { shape: [2], data_offsets: [0, 8] },
      { dtype: 'F32', data_offsets: [0, 8] },
      { ...t, dtype: 4 },
      { ...t, dtype: null },
      { ...t, shape: 2 },
      { ...t, shape: '2' },
      { ...t, shape: [-2] },
      { ...t, shape: [1.5] },
      { ...t, shape: ['2'] },
      { ...t, shape: [null] },
      { ...t, shape: [[2]] },
      { ...t, data_offsets: [0] },
      { ...t, data_offsets: [0, 8, 8] },
      { ...t, data_offsets: { 0: 0, 1: 8 } },
      { ...t, data_offsets: [0, -8] },
    ];
    for (const entry of bad) {
      const err = await expectCode(open(fileWith(entry)), 'bad-entry');
      expect(err.tensor).toBe('t');
      expect(err.message).toContain('"t"');
    }
  });

  it('rejects numbers that JSON.parse would read as integers but are not written as such (bad-entry)', async () => {
    for (const text of [
      '{"t":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}',
      '{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8e0]}}',
      '{"t":{"dtype":"F32","shape":[2],"data_offsets":[-0,8]}}',
      '{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,0.8E1]}}',
    ]) {
      await expectCode(open(rawFile(text, 8)), 'bad-entry');
    }
  });

  it('rejects deeply nested values and huge shapes with a typed error and a short message', async () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    await expectCode(open(rawFile(`{"t":{"dtype":"F32","shape":${deep},"data_offsets":[0,8]}}`, 8)), 'bad-entry');
    await expectCode(open(rawFile(`{"t":${deep}}`, 8)), 'bad-entry');
    await expectCode(open(rawFile(`{"__metadata__":{"k":${deep}}}`)), 'bad-metadata');
    const shape = `[${Array(1_000_000).fill(1).join(',')}]`;
    const err = await expectCode(open(rawFile(`{"t":{"dtype":"F32","shape":${shape},"data_offsets":[0,8]}}`, 8)), 'size-mismatch');
    expect(err.message.length).toBeLessThan(600);
  });

  it('rejects a field given twice in one entry (bad-entry)', async () => {
    const text = '{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"dtype":"F16"}}';
    const err = await expectCode(open(rawFile(text, 8)), 'bad-entry');
    expect(err.message).toContain('"dtype" twice');
  });

  it('rejects dtypes it does not read (unknown-dtype)', async () => {
    for (const dtype of ['F8_E4M3', 'F8_E5M2', 'F4', 'C64', 'float32', 'f32', '', 'toString', '__proto__', 'constructor']) {
      const err = await expectCode(open(fileWith({ ...t, dtype })), 'unknown-dtype');
      expect(err.message).toContain('supported: F64, F32, F16, BF16');
    }
  });

  it('rejects a shape or byte size beyond 2^53 - 1 (unsafe-size)', async () => {
    const cases: unknown[] = [
      { ...t, shape: [2 ** 30, 2 ** 30, 2 ** 30] },
      { ...t, shape: [2 ** 53] },
      { ...t, shape: [2 ** 51] }, // 2^51 elements fit, 2^53 bytes of F32 do not
      { ...t, data_offsets: [0, 2 ** 64] },
    ];
    for (const entry of cases) await expectCode(open(fileWith(entry)), 'unsafe-size');
    // Written as an integer literal too large for a double to hold exactly.
    await expectCode(open(rawFile('{"t":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,8]}}', 8)), 'unsafe-size');
  });

  it('checks the product in order, like the reference: overflow before a zero still fails', async () => {
    await expectCode(open(fileWith({ ...t, shape: [2 ** 40, 2 ** 40, 0], data_offsets: [0, 0] })), 'unsafe-size');
  });

  it('rejects a byte range that is not product(shape) × dtype size (size-mismatch)', async () => {
    for (const entry of [{ ...t, shape: [3] }, { ...t, dtype: 'F16' }, { ...t, shape: [] }, { ...t, shape: [2, 1, 0] }]) {
      const err = await expectCode(open(fileWith(entry)), 'size-mismatch');
      expect(err.tensor).toBe('t');
    }
  });
});

describe('safetensors: offsets tile the data area', () => {
  it('rejects a first tensor that does not start at 0', async () => {
    await expectCode(open(rawFile(header({ a: f32Entry(4, 1) }), 8)), 'bad-offsets');
  });
  it('rejects a gap', async () => {
    const err = await expectCode(open(rawFile(header({ a: f32Entry(0, 1), b: f32Entry(8, 1) }), 12)), 'bad-offsets');
    expect(err.message).toContain('gap of 4 bytes');
  });
  it('rejects an overlap', async () => {
    const err = await expectCode(open(rawFile(header({ a: f32Entry(0, 2), b: f32Entry(4, 1) }), 8)), 'bad-offsets');
    expect(err.message).toContain('overlaps');
  });
  it('rejects two tensors on the same bytes', async () => {
    await expectCode(open(rawFile(header({ a: f32Entry(0, 1), b: f32Entry(0, 1) }), 4)), 'bad-offsets');
  });
  it('rejects end < begin', async () => {
    const entry = { dtype: 'F32', shape: [0], data_offsets: [8, 4] };
    await expectCode(open(rawFile(header({ a: f32Entry(0, 2), b: entry }), 8)), 'bad-offsets');
  });
  it('rejects bytes after the last tensor', async () => {
    const err = await expectCode(open(rawFile(header({ a: f32Entry(0, 1) }), 5)), 'bad-offsets');
    expect(err.message).toContain('1 bytes after the last tensor');
    await expectCode(open(rawFile('{}', 1)), 'bad-offsets');
  });
  it('rejects tensors past the end of the file (truncated)', async () => {
    const full = writeSafetensors([{ name: 'w', dtype: 'F32', shape: [4], data: new Float32Array(4) }]);
    const err = await expectCode(open(full.subarray(0, full.length - 3)), 'truncated');
    expect(err.tensor).toBe('w');
  });
  it('orders by offset, not by header order, and zero-size tensors sit anywhere on the tiling', async () => {
    const text = header({
      z_end: { dtype: 'F32', shape: [0], data_offsets: [12, 12] },
      b: f32Entry(4, 2),
      z_mid: { dtype: 'BF16', shape: [3, 0], data_offsets: [4, 4] },
      a: f32Entry(0, 1),
      z_start: { dtype: 'U8', shape: [0], data_offsets: [0, 0] },
    });
    const f = await open(rawFile(text, 12));
    expect([...f.tensors.keys()]).toEqual(['z_start', 'a', 'z_mid', 'b', 'z_end']);
    expect((await f.readTensor('z_mid')).data).toEqual(new Float32Array(0));
    expect((await f.readTensor('z_end')).data).toEqual(new Float32Array(0));
  });
  it('rejects a zero-size tensor inside another tensor', async () => {
    const z = { dtype: 'F32', shape: [0], data_offsets: [4, 4] };
    await expectCode(open(rawFile(header({ a: f32Entry(0, 2), z }), 8)), 'bad-offsets');
  });
});

describe('safetensors: names and metadata', () => {
  it('rejects a tensor name given twice (duplicate-name), which JSON.parse would hide', async () => {
    const e = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}';
    const err = await expectCode(open(rawFile(`{"ab":${e},"ab":${e}}`, 4)), 'duplicate-name');
    expect(err.tensor).toBe('ab');
  });

  it('sees through escapes: "a\\u0062" and "ab" are the same name', async () => {
    const e1 = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}';
    const e2 = '{"dtype":"F32","shape":[1],"data_offsets":[4,8]}';
    await expectCode(open(rawFile(`{"a\\u0062":${e1},"ab":${e2}}`, 8)), 'duplicate-name');
    await expectCode(open(rawFile(`{"\\"q\\"":${e1},"\\u0022q\\u0022":${e2}}`, 8)), 'duplicate-name');
    // Different names with escapes and quotes inside are fine.
    const f = await open(rawFile(`{"a\\u0062":${e1},"a\\\\b":${e2}}`, 8));
    expect([...f.tensors.keys()]).toEqual(['ab', 'a\\b']);
  });

  it('detects a duplicate among 100k entries', async () => {
    const parts: string[] = [];
    for (let i = 0; i < 100_000; i++) parts.push(`"t${i}":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}`);
    parts.push('"t99999":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}');
    await expectCode(open(rawFile(`{${parts.join(',')}}`)), 'duplicate-name');
  });

  it('reads __metadata__ as a string map, not as a tensor', async () => {
    const f = await open(rawFile(header({ __metadata__: { format: 'pt', '0': 'zero', ['__proto__']: 'p', x: '' }, a: f32Entry(0, 1) }), 4));
    expect([...f.tensors.keys()]).toEqual(['a']);
    expect(Object.getPrototypeOf(f.metadata)).toBe(null);
    expect({ ...f.metadata }).toEqual({ format: 'pt', '0': 'zero', x: '', ['__proto__']: 'p' });
    expect(Object.keys(f.metadata)).toContain('__proto__');
    // No metadata: an empty map.
    expect(Object.keys((await open(rawFile('{}'))).metadata)).toEqual([]);
  });

  it('rejects __metadata__ that is not a string→string map (bad-metadata)', async () => {
    for (const m of [null, [], 'pt', 1, { format: 1 }, { format: null }, { nested: { a: 'b' } }, { list: ['a'] }]) {
      await expectCode(open(rawFile(header({ __metadata__: m }))), 'bad-metadata');
    }
  });

  it('rejects a tensor named __metadata__ (bad-metadata)', async () => {
    await expectCode(open(rawFile(header({ __metadata__: f32Entry(0, 1) }), 4)), 'bad-metadata');
    expect(() => writeSafetensors([{ name: '__metadata__', dtype: 'F32', shape: [1], data: new Float32Array(1) }])).toThrow(SafetensorsError);
  });

  it('rejects __metadata__ twice, or a key twice inside it (bad-metadata)', async () => {
    await expectCode(open(rawFile('{"__metadata__":{"a":"1"},"__metadata__":{"a":"2"}}')), 'bad-metadata');
    await expectCode(open(rawFile('{"__metadata__":{"a":"1","a":"2"}}')), 'bad-metadata');
  });

  it('keeps tensor names that look like prototype keys or numbers', async () => {
    const names = ['__proto__', 'constructor', '0', '12', 'ünïcødé 名前', ''];
    const file = writeSafetensors(names.map((name, i) => ({ name, dtype: 'U8' as const, shape: [1], data: new Uint8Array([i]) })));
    const f = await open(file);
    expect([...f.tensors.keys()]).toEqual(names); // file order, which the writer keeps
    for (const [i, name] of names.entries()) expect([...(await f.readTensor(name)).data]).toEqual([i]);
  });
});

describe('safetensors: reading tensors', () => {
  it('round-trips every dtype through the writer', async () => {
    const tensors = everyDtype();
    const f = await open(writeSafetensors(tensors, { format: 'pt' }));
    expect(f.metadata.format).toBe('pt');
    for (const t of tensors) {
      const { info, data } = await f.readTensor(t.name);
      expect(info).toMatchObject({ name: t.name, dtype: t.dtype, shape: [2, 3], byteLength: t.data.byteLength, file: 'test.safetensors' });
      if (t.dtype === 'BF16') {
        expect(data).toBeInstanceOf(Float32Array);
        const bits = new Uint16Array(bytesOf(t.data).slice().buffer);
        expect([...data]).toEqual([...bits].map(bf16BitsToF32));
        expect([...data].slice(0, 5)).toEqual([1.5, -2, bf16BitsToF32(0x7f7f), -0, 3.25]);
      } else {
        expect(bytesOf(data)).toEqual(bytesOf(t.data));
      }
      const expectedType = {
        F64: Float64Array, F32: Float32Array, F16: Uint16Array, BF16: Float32Array, I64: BigInt64Array,
        I32: Int32Array, I16: Int16Array, I8: Int8Array, U64: BigUint64Array, U32: Uint32Array, U16: Uint16Array,
        U8: Uint8Array, BOOL: Uint8Array,
      }[t.dtype];
      expect(data).toBeInstanceOf(expectedType);
      expect(data.length).toBe(6);
    }
  });

  it('copies tensors whose offset is not aligned to their element size', async () => {
    const values = new Float32Array([1, 2, 3, -4.5]);
    const bf = new Uint16Array([0x3f80, 0xbf80, 0x4000]);
    const file = writeSafetensors([
      { name: 'odd', dtype: 'I8', shape: [3], data: new Int8Array([-1, 2, -3]) },
      { name: 'f', dtype: 'F32', shape: [4], data: values },
      { name: 'odd2', dtype: 'U8', shape: [1], data: new Uint8Array([9]) },
      { name: 'bf', dtype: 'BF16', shape: [3], data: bf },
    ]);
    const f = await open(file);
    expect(f.tensors.get('f')!.byteOffset % 4).not.toBe(0);
    expect((await f.readTensor('f')).data).toEqual(values);
    expect((await f.readTensor('odd')).data).toEqual(new Int8Array([-1, 2, -3]));
    expect((await f.readTensor('bf')).data).toEqual(new Float32Array([1, -1, 2]));
  });

  it('reads a scalar (shape [])', async () => {
    const f = await open(writeSafetensors([{ name: 's', dtype: 'F32', shape: [], data: new Float32Array([42]) }]));
    expect(await f.readTensor('s')).toMatchObject({ info: { shape: [] }, data: new Float32Array([42]) });
  });

  it('reads only the 8 bytes, the header, and then exactly the tensor asked for', async () => {
    const file = writeSafetensors(everyDtype());
    const src = spySource(file);
    const f = await openSafetensors(src);
    expect(src.reads).toEqual([
      [0, 8],
      [8, f.dataOffset - 8],
    ]);
    const info = f.tensors.get('t.I32')!;
    await f.readTensor('t.I32');
    expect(src.reads[2]).toEqual([info.byteOffset, info.byteLength]);
  });

  it('fails for a tensor it does not have (missing-tensor) and for a source that returns the wrong length (short-read)', async () => {
    const file = writeSafetensors([{ name: 'w', dtype: 'F32', shape: [2], data: new Float32Array(2) }]);
    const f = await open(file);
    const err = await expectCode(f.readTensor('lm_head.weight'), 'missing-tensor');
    expect(err.message).toContain('"lm_head.weight"');
    const inner = bytesSource(file);
    const short: ByteSource = { name: 'short', size: inner.size, read: async (o, n) => (await inner.read(o, n)).subarray(0, Math.max(0, n - 1)) };
    await expectCode(openSafetensors(short), 'short-read');
  });

  it('writes what the Python library writes: __metadata__ first, spaces to a multiple of 8, given order', async () => {
    const file = writeSafetensors(
      [
        { name: 'b', dtype: 'F16', shape: [1], data: new Uint16Array([0x3c00]) },
        { name: 'a', dtype: 'F32', shape: [1], data: new Float32Array([2]) },
      ],
      { format: 'pt' },
    );
    const n = Number(new DataView(file.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const text = new TextDecoder().decode(file.subarray(8, 8 + n));
    expect(text.trimEnd()).toBe(
      '{"__metadata__":{"format":"pt"},"b":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},"a":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}',
    );
    expect(/^[^ ]*\}( *)$/.test(text)).toBe(true);
    expect(file.length).toBe(8 + n + 6);
  });

  it('refuses to write invalid files', () => {
    const w = (t: Partial<TensorToWrite>) => () => writeSafetensors([{ name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1), ...t }]);
    expect(w({ shape: [2] })).toThrow(SafetensorsError);
    expect(w({ shape: [-1] })).toThrow(SafetensorsError);
    expect(w({ dtype: 'F8' as Dtype })).toThrow(SafetensorsError);
    expect(w({ name: '\ud800' })).toThrow(SafetensorsError);
    const t: TensorToWrite = { name: 'x', dtype: 'U8', shape: [1], data: new Uint8Array(1) };
    expect(() => writeSafetensors([t, t])).toThrow(SafetensorsError);
  });

  it('parses a 100k-entry header correctly', async () => {
    const tensors: TensorToWrite[] = [];
    for (let i = 0; i < 100_000; i++) {
      tensors.push({ name: `layer.${i}.w`, dtype: i % 3 === 0 ? 'U8' : 'F32', shape: i % 5 === 0 ? [0] : [1], data: new Uint8Array(i % 5 === 0 ? 0 : i % 3 === 0 ? 1 : 4) });
    }
    const file = writeSafetensors(tensors);
    const f = await open(file);
    expect(f.tensors.size).toBe(100_000);
    const last = f.tensors.get('layer.99999.w')!;
    expect(last.byteOffset + last.byteLength).toBe(file.length);
    expect(f.tensors.get('layer.5.w')!.byteLength).toBe(0);
  });

  it('parses the header on its own with parseSafetensorsHeader', () => {
    const file = writeSafetensors([{ name: 'w', dtype: 'F32', shape: [2], data: new Float32Array(2) }], { k: 'v' });
    const n = readHeaderLength(file.subarray(0, 8), file.length);
    const h = parseSafetensorsHeader(file.subarray(8, 8 + n), file.length, 'x.safetensors');
    expect(h.dataOffset).toBe(8 + n);
    expect(h.metadata.k).toBe('v');
    expect(h.tensors.get('w')).toEqual({ name: 'w', dtype: 'F32', shape: [2], byteOffset: 8 + n, byteLength: 8, file: 'x.safetensors' });
  });
});

// ---------------------------------------------------------------------------------------------------------
// The real test models

function modelFile(model: string): Uint8Array<ArrayBuffer> {
  return readModelBytes(model, 'model.safetensors');
}

function expectedStoriesTensors(): Map<string, number[]> {
  const m = new Map<string, number[]>([['model.embed_tokens.weight', [512, 64]]]);
  for (let l = 0; l < 5; l++) {
    const p = `model.layers.${l}`;
    m.set(`${p}.input_layernorm.weight`, [64]);
    m.set(`${p}.self_attn.q_proj.weight`, [64, 64]);
    m.set(`${p}.self_attn.k_proj.weight`, [32, 64]);
    m.set(`${p}.self_attn.v_proj.weight`, [32, 64]);
    m.set(`${p}.self_attn.o_proj.weight`, [64, 64]);
    m.set(`${p}.post_attention_layernorm.weight`, [64]);
    m.set(`${p}.mlp.gate_proj.weight`, [172, 64]);
    m.set(`${p}.mlp.up_proj.weight`, [172, 64]);
    m.set(`${p}.mlp.down_proj.weight`, [64, 172]);
  }
  m.set('model.norm.weight', [64]);
  return m;
}

describe('safetensors: stories260K', () => {
  it('reads the F32 model: names, shapes, metadata, finite values', async () => {
    const f = await openSafetensors(bytesSource(modelFile('stories260K'), 'stories260K/model.safetensors'));
    const expected = expectedStoriesTensors();
    expect(new Set(f.tensors.keys())).toEqual(new Set(expected.keys()));
    expect({ ...f.metadata }).toEqual({ format: 'pt', source: 'stories260K.bin' });
    for (const [name, shape] of expected) {
      const { info, data } = await f.readTensor(name);
      expect(info.dtype).toBe('F32');
      expect(info.shape, name).toEqual(shape);
      expect(data).toBeInstanceOf(Float32Array);
      expect((data as Float32Array).every(Number.isFinite), name).toBe(true);
    }
  });

  it('the F16 model holds exactly the F32 weights rounded to f16', async () => {
    const f32 = await openSafetensors(bytesSource(modelFile('stories260K')));
    const f16 = await openSafetensors(bytesSource(modelFile('stories260K-f16')));
    expect([...f16.tensors.keys()].sort()).toEqual([...f32.tensors.keys()].sort());
    for (const name of f32.tensors.keys()) {
      const a = (await f32.readTensor(name)).data as Float32Array;
      const b = await f16.readTensor(name);
      expect(b.info.dtype).toBe('F16');
      expect(b.data).toBeInstanceOf(Uint16Array);
      expect(b.data, name).toEqual(toF16(a));
    }
  });

  it('reads the same tensors from a Blob and a File as from memory', async () => {
    const bytes = modelFile('stories260K');
    const mem = await openSafetensors(bytesSource(bytes));
    const blob = await openSafetensors(blobSource(new Blob([bytes])));
    const file = await openSafetensors(blobSource(new File([bytes], 'model.safetensors')));
    expect(blob.name).toBe('blob');
    expect(file.name).toBe('model.safetensors');
    for (const name of ['model.embed_tokens.weight', 'model.layers.4.mlp.down_proj.weight', 'model.norm.weight']) {
      const want = (await mem.readTensor(name)).data;
      expect((await blob.readTensor(name)).data).toEqual(want);
      expect((await file.readTensor(name)).data).toEqual(want);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// HTTP

interface Logged {
  method: string;
  path: string;
  range: string | undefined;
}

describe('safetensors over HTTP', () => {
  let server: Server;
  let base = '';
  const log: Logged[] = [];
  const small = writeSafetensors([{ name: 'w', dtype: 'F32', shape: [3], data: new Float32Array([1, 2, 3]) }], { format: 'pt' });
  let model: Uint8Array;

  /** Answers a Range request the way a compliant server does (single ranges only). */
  function serveRange(req: IncomingMessage, res: ServerResponse, bytes: Uint8Array, opts: { contentRange?: boolean; total?: number } = {}) {
    const total = opts.total ?? bytes.length;
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'Content-Length': bytes.length, 'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes' });
      return res.end();
    }
    if (!m) {
      res.writeHead(200, { 'Content-Length': bytes.length, 'Content-Type': 'application/octet-stream' });
      return res.end(bytes);
    }
    const start = Number(m[1]);
    if (start >= bytes.length) {
      res.writeHead(416, { 'Content-Range': `bytes */${bytes.length}` });
      return res.end();
    }
    const end = Math.min(Number(m[2]), bytes.length - 1);
    const headers: Record<string, string | number> = { 'Content-Type': 'application/octet-stream', 'Content-Length': end - start + 1 };
    if (opts.contentRange ?? true) headers['Content-Range'] = `bytes ${start}-${end}/${total}`;
    res.writeHead(206, headers);
    res.end(bytes.subarray(start, end + 1));
  }

  beforeAll(async () => {
    model = modelFile('stories260K');
    let served = 0;
    server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      log.push({ method: req.method ?? '', path, range: req.headers.range });
      switch (path) {
        case '/model.safetensors':
          return serveRange(req, res, model);
        case '/small.safetensors':
          return serveRange(req, res, small);
        case '/missing.safetensors':
          res.writeHead(404, { 'Content-Type': 'text/plain' });
          return res.end('Entry not found');
        case '/html.safetensors':
          res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
          return res.end('<!doctype html><html><body>Log in to continue</body></html>');
        case '/norange.safetensors':
          res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': small.length });
          return res.end(small);
        case '/norange-big.safetensors':
          res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': model.length });
          return res.end(model);
        case '/hidden-range.safetensors':
          // What a cross-origin fetch sees when Content-Range is not exposed.
          return serveRange(req, res, small, { contentRange: false });
        case '/empty.safetensors':
          return serveRange(req, res, new Uint8Array(0));
        case '/changing.safetensors':
          // Serves the probe honestly, then claims another total: the file was replaced.
          return serveRange(req, res, model, { total: served++ === 0 ? model.length : model.length + 1 });
        case '/short.safetensors': {
          const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
          const start = Number(m?.[1] ?? 0);
          const end = Math.min(Number(m?.[2] ?? 0), model.length - 1);
          const part = model.subarray(start, start === 0 ? end + 1 : end); // one byte short after the probe
          res.writeHead(206, { 'Content-Range': `bytes ${start}-${end}/${model.length}`, 'Content-Length': part.length });
          return res.end(part);
        }
        default:
          res.writeHead(500);
          return res.end();
      }
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((ok) => server.close(ok));
  });

  it('reads the header from the first request and each tensor with one Range request', async () => {
    log.length = 0;
    const f = await openSafetensors(await fetchSource(`${base}/model.safetensors?token=secret`));
    expect(f.name).toBe(`${base}/model.safetensors`); // no query string in names
    expect(f.size).toBe(model.length);
    expect(log).toEqual([{ method: 'GET', path: '/model.safetensors', range: 'bytes=0-65535' }]);
    const mem = await openSafetensors(bytesSource(model));
    for (const name of ['model.norm.weight', 'model.embed_tokens.weight']) {
      const info = f.tensors.get(name)!;
      log.length = 0;
      expect((await f.readTensor(name)).data).toEqual((await mem.readTensor(name)).data);
      if (info.byteOffset + info.byteLength > 65536) {
        expect(log).toEqual([{ method: 'GET', path: '/model.safetensors', range: `bytes=${info.byteOffset}-${info.byteOffset + info.byteLength - 1}` }]);
      }
    }
  });

  it('reads the header with its own Range request when the first request is small', async () => {
    log.length = 0;
    const f = await openSafetensors(await fetchSource(`${base}/model.safetensors`, { prefixBytes: 8 }));
    expect(log.map((l) => l.range)).toEqual(['bytes=0-7', `bytes=8-${f.dataOffset - 1}`]);
    expect(f.tensors.size).toBe(47);
  });

  it('fails with HttpError 404 for a missing file', async () => {
    const err = await expectHttp(fetchSource(`${base}/missing.safetensors?sig=abc`), 'status', 404);
    expect(err.url).toBe(`${base}/missing.safetensors?sig=abc`);
    expect(err.message).not.toContain('sig=abc');
  });

  it('fails with HttpError for an HTML page served with 200', async () => {
    await expectHttp(fetchSource(`${base}/html.safetensors`), 'html', 200);
  });

  it('takes a small file whole when the server ignores Range, and refuses a large one', async () => {
    const f = await openSafetensors(await fetchSource(`${base}/norange.safetensors`));
    expect((await f.readTensor('w')).data).toEqual(new Float32Array([1, 2, 3]));
    await expectHttp(fetchSource(`${base}/norange-big.safetensors`, { maxWholeBytes: 1000 }), 'range-not-supported', 200);
  });

  it('learns the size from HEAD when Content-Range is hidden (CORS)', async () => {
    log.length = 0;
    const f = await openSafetensors(await fetchSource(`${base}/hidden-range.safetensors`));
    expect(f.size).toBe(small.length);
    expect(log.map((l) => l.method)).toEqual(['GET', 'HEAD']);
    expect((await f.readTensor('w')).data).toEqual(new Float32Array([1, 2, 3]));
  });

  it('treats an empty file as too small', async () => {
    await expectCode(openSafetensors(await fetchSource(`${base}/empty.safetensors`)), 'too-small');
  });

  it('notices a file that changed on the server, and a short body', async () => {
    const changing = await openSafetensors(await fetchSource(`${base}/changing.safetensors`));
    await expectHttp(changing.readTensor('model.embed_tokens.weight'), 'changed', 206);
    const short = await openSafetensors(await fetchSource(`${base}/short.safetensors`));
    await expectHttp(short.readTensor('model.embed_tokens.weight'), 'short-body');
  });

  it('wraps a network failure as HttpError and passes aborts through', async () => {
    await expectHttp(fetchSource('http://127.0.0.1:1/x.safetensors'), 'network', 0);
    const ctl = new AbortController();
    ctl.abort();
    await expect(fetchSource(`${base}/small.safetensors`, { signal: ctl.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('opens a sharded model over HTTP', async () => {
    const index = JSON.stringify({ metadata: { total_size: 12 }, weight_map: { w: 'small.safetensors' } });
    const m = await openShardedSafetensors(index, (name) => fetchSource(new URL(name, `${base}/`).href));
    expect((await m.readTensor('w')).data).toEqual(new Float32Array([1, 2, 3]));
  });
});

// ---------------------------------------------------------------------------------------------------------
// Sharded models

describe('sharded safetensors', () => {
  const shard1 = writeSafetensors([
    { name: 'a', dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) },
    { name: 'b', dtype: 'F16', shape: [1], data: new Uint16Array([0x3c00]) },
  ]);
  const shard2 = writeSafetensors([{ name: 'c', dtype: 'BF16', shape: [1], data: new Uint16Array([0x4040]) }]);
  const files: Record<string, Uint8Array> = { 'model-00001-of-00002.safetensors': shard1, 'model-00002-of-00002.safetensors': shard2 };
  const opens: string[] = [];
  const openShard = async (name: string): Promise<ByteSource> => {
    opens.push(name);
    const bytes = Object.hasOwn(files, name) ? files[name] : undefined;
    if (!bytes) throw new Error(`no such file: ${name}`);
    return bytesSource(bytes, name);
  };
  const index = (weightMap: Record<string, string>) => JSON.stringify({ metadata: { total_size: 14 }, weight_map: weightMap });
  const valid = { a: 'model-00001-of-00002.safetensors', b: 'model-00001-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' };

  it('opens each shard once and reads tensors from the right one', async () => {
    opens.length = 0;
    const m = await openShardedSafetensors(index(valid), openShard);
    expect(opens.sort()).toEqual(Object.keys(files).sort());
    expect([...m.tensors.keys()]).toEqual(['a', 'b', 'c']);
    expect(m.tensors.get('c')!.file).toBe('model-00002-of-00002.safetensors');
    expect(m.metadata.total_size).toBe(14);
    expect(m.shards.size).toBe(2);
    expect((await m.readTensor('a')).data).toEqual(new Float32Array([1, 2]));
    expect((await m.readTensor('b')).data).toEqual(new Uint16Array([0x3c00]));
    expect((await m.readTensor('c')).data).toEqual(new Float32Array([3]));
    await expectCode(m.readTensor('d'), 'missing-tensor');
    // Also from an already parsed index object.
    const again = await openShardedSafetensors({ weight_map: valid }, openShard);
    expect(again.tensors.size).toBe(3);
  });

  it('rejects a tensor the index puts in the wrong shard (shard-mismatch)', async () => {
    const err = await expectCode(openShardedSafetensors(index({ ...valid, c: 'model-00001-of-00002.safetensors' }), openShard), 'shard-mismatch');
    expect(err.tensor).toBe('c');
  });

  it('rejects a tensor in no shard, and a shard tensor the index does not list (shard-mismatch)', async () => {
    await expectCode(openShardedSafetensors(index({ ...valid, d: 'model-00002-of-00002.safetensors' }), openShard), 'shard-mismatch');
    const { b: _b, ...withoutB } = valid;
    await expectCode(openShardedSafetensors(index(withoutB), openShard), 'shard-mismatch');
  });

  it('rejects a tensor that is in two shards (duplicate-name)', async () => {
    files['dup.safetensors'] = writeSafetensors([{ name: 'a', dtype: 'F32', shape: [0], data: new Float32Array(0) }, { name: 'e', dtype: 'U8', shape: [0], data: new Uint8Array(0) }]);
    try {
      await expectCode(openShardedSafetensors(index({ ...valid, e: 'dup.safetensors' }), openShard), 'duplicate-name');
    } finally {
      delete files['dup.safetensors'];
    }
  });

  it('rejects a missing shard (missing-shard), keeping the cause', async () => {
    const err = await expectCode(openShardedSafetensors(index({ ...valid, c: 'model-00003-of-00003.safetensors' }), openShard), 'missing-shard');
    expect(err.file).toBe('model-00003-of-00003.safetensors');
    expect(String((err.cause as Error).message)).toContain('no such file');
  });

  it('rejects shard names that leave the folder or change the URL (bad-index)', async () => {
    for (const name of ['../model.safetensors', '..', '.', 'a/b.safetensors', '/etc/passwd', 'a\\b', 'C:x', 'https://evil.example/x', '%2e%2e', 'x?y', '', 'a\u0000b']) {
      opens.length = 0;
      await expectCode(openShardedSafetensors(index({ ...valid, c: name }), openShard), 'bad-index');
      expect(opens).toEqual([]); // refused before opening anything
    }
  });

  it('rejects malformed indexes (bad-index)', () => {
    const bad = [
      'not json',
      '[]',
      '{}',
      '{"weight_map":[]}',
      '{"weight_map":{}}',
      '{"weight_map":{"a":1}}',
      '{"weight_map":{"__metadata__":"x.safetensors"}}',
      '{"metadata":[],"weight_map":{"a":"x.safetensors"}}',
      '{"weight_map":{"a":"x.safetensors","a":"y.safetensors"}}',
      '{"weight_map":{"a":"x.safetensors"},"weight_map":{"b":"x.safetensors"}}',
    ];
    for (const text of bad) {
      expect(() => parseSafetensorsIndex(text), text).toThrow(SafetensorsError);
      try {
        parseSafetensorsIndex(text);
      } catch (e) {
        expect((e as SafetensorsError).code).toBe('bad-index');
      }
    }
  });

  it('passes a shard file error through with the shard named', async () => {
    files['bad.safetensors'] = rawFile('{"a":1}');
    try {
      const err = await expectCode(openShardedSafetensors(index({ x: 'bad.safetensors' }), openShard), 'bad-entry');
      expect(err.file).toBe('bad.safetensors');
    } finally {
      delete files['bad.safetensors'];
    }
  });
});
