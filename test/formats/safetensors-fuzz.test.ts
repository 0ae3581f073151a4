/**
 * Fuzzing the safetensors reader: random bytes and mutations of valid files must either open (and then read
 * consistently) or fail with SafetensorsError; any other exception, or an inconsistent result, fails.
 * A fresh seed each run; replay a failure with WEBGPU_LLM_SEED=<seed> (printed in the failure message).
 */
import { describe, expect, it } from 'vitest';
import { DTYPE_BYTES, SafetensorsError, openSafetensors, parseSafetensorsIndex, type SafetensorsErrorCode, type SafetensorsFile } from '../../src/formats/safetensors';
import { writeSafetensors } from '../../src/dev/safetensors-writer';
import { bytesSource } from '../../src/formats/sources';
import { createRng, freshSeed, type Rng } from '../../src/util/random';

const CASES = 5000;
const INDEX_CASES = 1000;

function baseFiles(): Uint8Array[] {
  const u8 = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 37 + 5) & 0xff);
  return [
    writeSafetensors(
      [
        { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [4, 3], data: new Float32Array([1, -2, 3, 0.5, 0, -0, 7, 8, 9, 10, 11, 12]) },
        { name: 'model.norm.weight', dtype: 'BF16', shape: [3], data: new Uint16Array([0x3f80, 0x4000, 0xbf80]) },
        { name: 'odd', dtype: 'I8', shape: [3], data: u8(3) },
        { name: 'w', dtype: 'F16', shape: [2, 2], data: new Uint16Array([0x3c00, 0x4000, 0xc000, 0x0001]) },
        { name: 'empty', dtype: 'U8', shape: [0, 5], data: u8(0) },
        { name: 'i', dtype: 'I32', shape: [2], data: u8(8) },
        { name: 'b', dtype: 'BOOL', shape: [2], data: new Uint8Array([0, 1]) },
        { name: 'big', dtype: 'I64', shape: [1], data: u8(8) },
      ],
      { format: 'pt', note: 'a "quoted" \\ value', '0': 'é' },
    ),
    writeSafetensors([
      { name: 'q"x\\y', dtype: 'F64', shape: [1], data: new Float64Array([Math.PI]) },
      { name: 'ünï\u2028', dtype: 'U16', shape: [], data: u8(2) },
      { name: 'z', dtype: 'F32', shape: [0], data: u8(0) },
    ]),
    writeSafetensors([]),
  ];
}

const INTERESTING_BYTES = [0x00, 0xff, 0x7b, 0x7d, 0x5b, 0x5d, 0x22, 0x5c, 0x2c, 0x3a, 0x20, 0x0a, 0x30, 0x39, 0x2d, 0x2e, 0x65, 0x80, 0xc0, 0xed];
const JSON_CHARS = '{}[]":,0123456789-.eE+ \\\n\tutfnrlsabcdF_x\u00e9\u{1F600}';
const NUMBERS = ['0', '1', '-1', '-0', '1.0', '1e3', '2E-1', '4294967296', '9007199254740991', '9007199254740992', '18446744073709551616', '1' + '0'.repeat(400), '00', '3'];
const STRINGS = ['F32', 'F16', 'BF16', 'I8', 'U8', 'F8_E4M3', 'BOOL', '__metadata__', 'dtype', 'shape', 'data_offsets', 'w', 'odd', 'a\\u0062', '\\ud800', '\\u0000', '', 'x'.repeat(300)];

interface Mutation {
  kind: string;
  bytes: Uint8Array;
}

function headerOf(file: Uint8Array): { text: string; data: Uint8Array } {
  const n = new DataView(file.buffer, file.byteOffset).getUint32(0, true);
  return { text: new TextDecoder().decode(file.subarray(8, 8 + n)), data: file.subarray(8 + n) };
}

function rebuild(rng: Rng, text: string, data: Uint8Array): Uint8Array {
  let json = new TextEncoder().encode(text);
  if (rng.next() < 0.5) {
    const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(items.length)];
}

function randomBytes(rng: Rng, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => (rng.next() < 0.3 ? pick(rng, INTERESTING_BYTES) : rng.int(256)));
}

/** One random edit of JSON text: characters, spans, numbers, strings. */
function editText(rng: Rng, text: string): string {
  const at = rng.int(text.length + 1);
  switch (rng.int(8)) {
    case 0: // replace a character
      return text.slice(0, at) + pick(rng, [...JSON_CHARS]) + text.slice(at + 1);
    case 1: // insert a character
      return text.slice(0, at) + pick(rng, [...JSON_CHARS]) + text.slice(at);
    case 2: // delete a span
      return text.slice(0, at) + text.slice(at + 1 + rng.int(8));
    case 3: {
      // duplicate a span (makes duplicate keys and entries)
      const len = 1 + rng.int(80);
      return text.slice(0, at) + text.slice(at, at + len) + text.slice(at);
    }
    case 4: {
      // replace a number
      const nums = [...text.matchAll(/-?\d+(\.\d+)?([eE][-+]?\d+)?/g)];
      if (!nums.length) return text;
      const m = pick(rng, nums);
      return text.slice(0, m.index) + pick(rng, NUMBERS) + text.slice(m.index + m[0].length);
    }
    case 5: {
      // replace a string's contents (dtypes, reserved and existing names, escapes)
      const strs = [...text.matchAll(/"((?:[^"\\]|\\.)*)"/g)];
      if (!strs.length) return text;
      const m = pick(rng, strs);
      const existing = pick(rng, strs)[1];
      return text.slice(0, m.index) + `"${rng.next() < 0.3 ? existing : pick(rng, STRINGS)}"` + text.slice(m.index + m[0].length);
    }
    case 6: {
      // move a span elsewhere
      const len = 1 + rng.int(40);
      const span = text.slice(at, at + len);
      const rest = text.slice(0, at) + text.slice(at + len);
      const to = rng.int(rest.length + 1);
      return rest.slice(0, to) + span + rest.slice(to);
    }
    default: // trailing characters after the JSON
      return text + pick(rng, [' ', '  ', '\n', '\0', '}', 'x', '{}']);
  }
}

function mutate(rng: Rng, bases: Uint8Array[]): Mutation {
  const base = pick(rng, bases);
  const copy = () => base.slice();
  const kind = pick(rng, ['random', 'random-json', 'bitflip', 'byte-set', 'truncate', 'extend', 'length', 'json', 'json', 'json', 'json-multi']);
  switch (kind) {
    case 'random':
      return { kind, bytes: randomBytes(rng, rng.int(300)) };
    case 'random-json': {
      const text = '{' + Array.from({ length: rng.int(120) }, () => pick(rng, [...JSON_CHARS])).join('');
      return { kind, bytes: rebuild(rng, text, randomBytes(rng, rng.int(64))) };
    }
    case 'bitflip': {
      const b = copy();
      const headerEnd = Math.min(b.length, 8 + new DataView(b.buffer).getUint32(0, true) + 16);
      for (let k = 1 + rng.int(8); k > 0; k--) {
        const at = rng.next() < 0.7 ? rng.int(headerEnd) : rng.int(b.length);
        b[at] ^= 1 << rng.int(8);
      }
      return { kind, bytes: b };
    }
    case 'byte-set': {
      const b = copy();
      for (let k = 1 + rng.int(4); k > 0; k--) b[rng.int(b.length)] = pick(rng, INTERESTING_BYTES);
      return { kind, bytes: b };
    }
    case 'truncate':
      return { kind, bytes: base.slice(0, rng.int(base.length + 1)) };
    case 'extend': {
      const b = new Uint8Array(base.length + 1 + rng.int(16));
      b.set(base);
      b.set(randomBytes(rng, b.length - base.length), base.length);
      return { kind, bytes: b };
    }
    case 'length': {
      const b = copy();
      const view = new DataView(b.buffer);
      const n = view.getUint32(0, true);
      const choice = rng.int(8);
      const lengths: bigint[] = [
        BigInt(Math.max(0, n + rng.int(33) - 16)),
        BigInt(rng.int(2 ** 32)),
        (BigInt(1 + rng.int(2 ** 32 - 1)) << 32n) | BigInt(rng.int(2 ** 32)),
        pick(rng, [0n, 100_000_000n, 100_000_001n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n]),
        BigInt(Math.max(0, b.length - 8)),
        BigInt(b.length - 7),
        BigInt(rng.int(b.length)),
        BigInt(n),
      ];
      view.setBigUint64(0, lengths[choice], true);
      return { kind, bytes: b };
    }
    case 'json':
    case 'json-multi': {
      const { text, data } = headerOf(base);
      let t = text.trimEnd();
      for (let k = kind === 'json' ? 1 : 2 + rng.int(6); k > 0; k--) t = editText(rng, t);
      return { kind, bytes: rebuild(rng, t, data) };
    }
  }
  throw new Error(`unknown mutation ${kind}`);
}

/** What must hold for any file that opened: the tensors tile the data area and read back at their size. */
async function checkOpened(f: SafetensorsFile, size: number): Promise<void> {
  let at = f.dataOffset;
  for (const info of [...f.tensors.values()].sort((a, b) => a.byteOffset - b.byteOffset || a.byteLength - b.byteLength)) {
    if (info.byteOffset !== at) throw new Error(`tensor ${info.name} at ${info.byteOffset}, expected ${at}`);
    const count = info.shape.reduce((a, b) => a * b, 1);
    if (count * DTYPE_BYTES[info.dtype] !== info.byteLength) throw new Error(`tensor ${info.name}: size does not match its shape`);
    at += info.byteLength;
    const { data } = await f.readTensor(info.name);
    if (data.length !== count) throw new Error(`tensor ${info.name}: read ${data.length} elements, expected ${count}`);
  }
  if (at !== size) throw new Error(`tensors end at ${at}, file is ${size} bytes`);
}

function hex(bytes: Uint8Array, max = 256): string {
  return [...bytes.subarray(0, max)].map((b) => b.toString(16).padStart(2, '0')).join('') + (bytes.length > max ? '…' : '');
}

describe('safetensors fuzz', () => {
  it(`${CASES} random and mutated files: each opens consistently or fails with SafetensorsError`, async () => {
    const seed = freshSeed();
    const rng = createRng(seed);
    const bases = baseFiles();
    const outcomes = new Map<SafetensorsErrorCode | 'ok', number>();
    for (let i = 0; i < CASES; i++) {
      const { kind, bytes } = mutate(rng, bases);
      let outcome: SafetensorsErrorCode | 'ok';
      try {
        const f = await openSafetensors(bytesSource(bytes, 'fuzz.safetensors'));
        await checkOpened(f, bytes.length);
        outcome = 'ok';
      } catch (e) {
        if (!(e instanceof SafetensorsError)) {
          const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
          throw new Error(
            `fuzz case ${i} (${kind}) threw ${what}, not a SafetensorsError. Replay with WEBGPU_LLM_SEED=${seed}. ` +
              `File (${bytes.length} bytes): ${hex(bytes)}`,
            { cause: e },
          );
        }
        outcome = e.code;
      }
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    const summary = `seed ${seed}: ${JSON.stringify(Object.fromEntries(outcomes))}`;
    // Both paths were exercised, and the cheap early checks were reached.
    for (const code of ['ok', 'too-small', 'header-too-large', 'header-out-of-bounds', 'header-not-json'] as const) {
      expect(outcomes.get(code) ?? 0, summary).toBeGreaterThan(0);
    }
  });

  it(`${INDEX_CASES} mutated index files: each parses or fails with SafetensorsError`, () => {
    const seed = freshSeed();
    const rng = createRng(seed);
    const index = JSON.stringify({
      metadata: { total_size: 123 },
      weight_map: { 'model.embed_tokens.weight': 'model-00001-of-00002.safetensors', 'lm_head.weight': 'model-00002-of-00002.safetensors' },
    });
    let parsed = 0;
    for (let i = 0; i < INDEX_CASES; i++) {
      let text = index;
      for (let k = 1 + rng.int(4); k > 0; k--) text = editText(rng, text);
      try {
        const { weightMap } = parseSafetensorsIndex(text);
        for (const f of weightMap.values()) if (/[/\\]|^\.\.?$/.test(f)) throw new Error(`unsafe shard name ${JSON.stringify(f)} accepted`);
        parsed++;
      } catch (e) {
        if (!(e instanceof SafetensorsError)) {
          throw new Error(`index fuzz case ${i} threw ${String(e)}. Replay with WEBGPU_LLM_SEED=${seed}. Index: ${JSON.stringify(text)}`, { cause: e });
        }
      }
    }
    expect(parsed, `seed ${seed}`).toBeGreaterThan(0);
  });
});
