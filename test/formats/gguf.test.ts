import { describe, expect, it } from 'vitest';
import { llamaToGguf, GgufTokenType, llamaVocab, tokenIdText, tokenIdVocab, unpermuteRotateHalfRows } from '../../src/formats/gguf-export';
import { GgmlType, quantizeQ4_0, quantizeQ8_0, writeGgufBlob } from '../../src/formats/gguf';
import { f16BitsToF32 } from '../../src/gpu/f16';
import { createRng, freshSeed } from '../../src/util/random';
import { openSafetensors } from '../../src/formats/safetensors';
import { writeSafetensors } from '../../src/dev/safetensors-writer';
import { bytesSource } from '../../src/formats/sources';
import { parseModelConfig } from '../../src/model/config';

type Parsed = {
  version: number;
  metadata: Map<string, unknown>;
  tensors: Array<{ name: string; dims: number[]; type: number; offset: number }>;
  dataStart: number;
  bytes: Uint8Array;
};

/** A minimal GGUF reader, independent of the writer. */
function readGguf(bytes: Uint8Array): Parsed {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 0;
  const dec = new TextDecoder();
  const u32 = () => ((p += 4), v.getUint32(p - 4, true));
  const u64 = () => ((p += 8), Number(v.getBigUint64(p - 8, true)));
  const s = () => {
    const n = u64();
    p += n;
    return dec.decode(bytes.subarray(p - n, p));
  };
  const val = (t: number): unknown => {
    switch (t) {
      case 4:
        return u32();
      case 5:
        return (p += 4), v.getInt32(p - 4, true);
      case 6:
        return (p += 4), v.getFloat32(p - 4, true);
      case 7:
        return (p += 1), v.getUint8(p - 1) === 1;
      case 8:
        return s();
      case 9: {
        const it = u32();
        const n = u64();
        return Array.from({ length: n }, () => val(it));
      }
      default:
        throw new Error(`type ${t}`);
    }
  };
  expect(dec.decode(bytes.subarray(0, 4))).toBe('GGUF');
  p = 4;
  const version = u32();
  const nt = u64();
  const nkv = u64();
  const metadata = new Map<string, unknown>();
  for (let i = 0; i < nkv; i++) {
    const k = s();
    metadata.set(k, val(u32()));
  }
  const tensors: Parsed['tensors'] = [];
  for (let i = 0; i < nt; i++) {
    const name = s();
    const nd = u32();
    const dims = Array.from({ length: nd }, () => u64());
    tensors.push({ name, dims, type: u32(), offset: u64() });
  }
  const align = (metadata.get('general.alignment') as number | undefined) ?? 32;
  const dataStart = Math.ceil(p / align) * align;
  return { version, metadata, tensors, dataStart, bytes };
}

const f32Bytes = (a: number[]) => new Uint8Array(new Float32Array(a).buffer);

const blobBytes = async (blob: Blob): Promise<Uint8Array> => new Uint8Array(await blob.arrayBuffer());

describe('writeGgufBlob', () => {
  it('writes a GGUF v3 file a reader parses back, from tensors in buffers and in Blobs', async () => {
    const a = f32Bytes([1, 2, 3, 4, 5, 6]);
    const b = new Uint8Array(new Uint16Array([0x3c00, 0x4000, 0x4200]).buffer);
    const out = await blobBytes(writeGgufBlob({
      metadata: [
        ['general.architecture', { type: 'string', value: 'llama' }],
        ['x.u32', { type: 'u32', value: 7 }],
        ['x.i32', { type: 'i32', value: -3 }],
        ['x.f32', { type: 'f32', value: 0.5 }],
        ['x.bool', { type: 'bool', value: true }],
        ['x.strs', { type: 'array', itemType: 'string', value: ['a', 'bé', ''] }],
        ['x.f32s', { type: 'array', itemType: 'f32', value: new Float32Array([-1, 0.25]) }],
        ['x.i32s', { type: 'array', itemType: 'i32', value: [1, -2, 6] }],
      ],
      tensors: [
        { name: 'w', shape: [2, 3], type: GgmlType.F32, data: a },
        { name: 'h', shape: [3], type: GgmlType.F16, data: new Blob([b]) },
      ],
    }));
    const g = readGguf(out);
    expect(g.version).toBe(3);
    expect(g.metadata.get('general.architecture')).toBe('llama');
    expect(g.metadata.get('general.alignment')).toBe(32);
    expect(g.metadata.get('x.u32')).toBe(7);
    expect(g.metadata.get('x.i32')).toBe(-3);
    expect(g.metadata.get('x.f32')).toBe(0.5);
    expect(g.metadata.get('x.bool')).toBe(true);
    expect(g.metadata.get('x.strs')).toEqual(['a', 'bé', '']);
    expect(g.metadata.get('x.f32s')).toEqual([-1, 0.25]);
    expect(g.metadata.get('x.i32s')).toEqual([1, -2, 6]);
    expect(g.tensors).toEqual([
      { name: 'w', dims: [3, 2], type: 0, offset: 0 },
      { name: 'h', dims: [3], type: 1, offset: 32 },
    ]);
    expect(g.dataStart % 32).toBe(0);
    expect(g.bytes.subarray(g.dataStart, g.dataStart + a.length)).toEqual(a);
    expect(g.bytes.subarray(g.dataStart + 32, g.dataStart + 38)).toEqual(b);
    expect(out.length % 32).toBe(0);
  });

  it('rejects a tensor whose bytes do not match its shape', () => {
    expect(() => writeGgufBlob({ metadata: [], tensors: [{ name: 'w', shape: [2, 2], type: GgmlType.F32, data: new Uint8Array(12) }] })).toThrow(/bytes/);
    expect(() => writeGgufBlob({ metadata: [], tensors: [{ name: 'w', shape: [2, 2], type: GgmlType.F32, data: new Blob([new Uint8Array(20)]) }] })).toThrow(/bytes/);
  });
});

describe('unpermuteRotateHalfRows', () => {
  it("matches convert_hf_to_gguf.py's permute on a hand-made example", () => {
    // 2 heads of hd = 4, one column: HF rows per head are [x0, x1, y0, y1] (rotate-half: pairs (x_i, y_i));
    // llama.cpp wants them interleaved [x0, y0, x1, y1].
    const hf = f32Bytes([10, 11, 20, 21, 30, 31, 40, 41]);
    const out = new Float32Array(unpermuteRotateHalfRows(hf, 8, 4, 2).buffer);
    expect(Array.from(out)).toEqual([10, 20, 11, 21, 30, 40, 31, 41]);
  });

  it('moves whole rows', () => {
    // 1 head of hd = 4, 2 columns.
    const hf = f32Bytes([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(Array.from(new Float32Array(unpermuteRotateHalfRows(hf, 4, 8, 1).buffer))).toEqual([0, 1, 4, 5, 2, 3, 6, 7]);
  });
});

describe('llamaToGguf', () => {
  const tokenizerJson = {
    model: {
      type: 'BPE',
      unk_token: '<unk>',
      vocab: { '<unk>': 0, '<s>': 1, '</s>': 2, '<0x41>': 3, a: 4, b: 5, ab: 6 },
      merges: ['a b'],
    },
    added_tokens: [
      { id: 0, content: '<unk>', special: true },
      { id: 1, content: '<s>', special: true },
      { id: 2, content: '</s>', special: true },
    ],
  };

  it('derives token types and scores', () => {
    const v = llamaVocab(tokenizerJson, 8);
    expect(v.tokens).toEqual(['<unk>', '<s>', '</s>', '<0x41>', 'a', 'b', 'ab', '[PAD7]']);
    expect(Array.from(v.types)).toEqual([GgufTokenType.UNKNOWN, 3, 3, GgufTokenType.BYTE, 1, 1, 1, GgufTokenType.UNUSED]);
    expect(Array.from(v.scores)).toEqual([0, 0, 0, 0, -4, -5, -0, 0]);
    expect(v.unkId).toBe(0);
  });

  it('exports a tiny Llama with the tensor names, shapes and metadata llama.cpp reads', async () => {
    const D = 4, V = 8, I = 6, hd = 2, nH = 2, nKV = 1;
    const spec = parseModelConfig({
      model_type: 'llama',
      hidden_size: D,
      intermediate_size: I,
      num_hidden_layers: 1,
      num_attention_heads: nH,
      num_key_value_heads: nKV,
      vocab_size: V,
      max_position_embeddings: 64,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      tie_word_embeddings: true,
      bos_token_id: 1,
      eos_token_id: 2,
    });
    const t = (name: string, shape: number[]) => {
      const n = shape.reduce((x, y) => x * y, 1);
      return { name, dtype: 'F32' as const, shape, data: new Float32Array(Array.from({ length: n }, (_, i) => i)) };
    };
    const st = writeSafetensors([
      t('model.embed_tokens.weight', [V, D]),
      t('model.layers.0.input_layernorm.weight', [D]),
      t('model.layers.0.self_attn.q_proj.weight', [nH * hd, D]),
      t('model.layers.0.self_attn.k_proj.weight', [nKV * hd, D]),
      t('model.layers.0.self_attn.v_proj.weight', [nKV * hd, D]),
      t('model.layers.0.self_attn.o_proj.weight', [D, nH * hd]),
      t('model.layers.0.post_attention_layernorm.weight', [D]),
      t('model.layers.0.mlp.gate_proj.weight', [I, D]),
      t('model.layers.0.mlp.up_proj.weight', [I, D]),
      t('model.layers.0.mlp.down_proj.weight', [D, I]),
      t('model.norm.weight', [D]),
    ]);
    const g = readGguf(await blobBytes(await llamaToGguf(spec, await openSafetensors(bytesSource(st)), tokenizerJson, { name: 'tiny' })));
    expect(g.metadata.get('general.architecture')).toBe('llama');
    expect(g.metadata.get('llama.attention.head_count_kv')).toBe(1);
    expect(g.metadata.get('llama.rope.dimension_count')).toBe(hd);
    expect(g.metadata.get('tokenizer.ggml.bos_token_id')).toBe(1);
    const names = g.tensors.map((x) => x.name);
    expect(names).toContain('blk.0.ffn_gate.weight');
    expect(names).not.toContain('output.weight');
    const q = g.tensors.find((x) => x.name === 'blk.0.attn_q.weight')!;
    expect(q.dims).toEqual([D, nH * hd]);
    const down = g.tensors.find((x) => x.name === 'blk.0.ffn_down.weight')!;
    expect(down.dims).toEqual([I, D]);
    for (const x of g.tensors) expect(x.offset % 32).toBe(0);
    // hd = 2: one pair per head, so the un-permutation is the identity; check the bytes arrived.
    const qData = new Float32Array(g.bytes.slice(g.dataStart + q.offset, g.dataStart + q.offset + 16 * 4).buffer);
    expect(Array.from(qData)).toEqual(Array.from({ length: 16 }, (_, i) => i));
  });

  it('spells token ids in the token-id alphabet, one code point each', () => {
    const v = tokenIdVocab(300);
    expect(new Set(v.tokens).size).toBe(300);
    const ids = [0, 1, 299, 17, 17];
    expect([...tokenIdText(ids)].map((c) => v.tokens.indexOf(c))).toEqual(ids);
    expect(Array.from(v.types).every((t) => t === GgufTokenType.NORMAL)).toBe(true);
  });
});

/** Dequantizes Q8_0 / Q4_0 blocks (an f16 scale, then the values) as llama.cpp's dequantize_row_* do. */
function dequantize(bytes: Uint8Array, type: 'q8' | 'q4'): Float32Array {
  const blockBytes = type === 'q8' ? 34 : 18;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array((bytes.byteLength / blockBytes) * 32);
  for (let b = 0; b < bytes.byteLength / blockBytes; b++) {
    const d = f16BitsToF32(view.getUint16(b * blockBytes, true));
    for (let j = 0; j < 32; j++) {
      const q = type === 'q8' ? view.getInt8(b * 34 + 2 + j) : ((bytes[b * 18 + 2 + (j % 16)] >> (j < 16 ? 0 : 4)) & 15) - 8;
      out[b * 32 + j] = q * d;
    }
  }
  return out;
}

describe('Q8_0 and Q4_0 quantization', () => {
  for (const type of ['q8', 'q4'] as const) {
    it(`${type}: each value within half a step of its block's scale`, () => {
      const seed = freshSeed();
      const random = createRng(seed).next;
      // Blocks of mixed magnitude, one all zeros (scale 0).
      const x = new Float32Array(32 * 7).map((_, i) => (i < 32 ? 0 : (random() * 2 - 1) * 10 ** Math.floor(i / 64 - 2)));
      const bytes = type === 'q8' ? quantizeQ8_0(x) : quantizeQ4_0(x);
      expect(bytes.byteLength).toBe(7 * (type === 'q8' ? 34 : 18));
      const y = dequantize(bytes, type);
      for (let b = 0; b < 7; b++) {
        const block = x.subarray(b * 32, b * 32 + 32);
        const amax = Math.max(...block.map(Math.abs));
        const step = type === 'q8' ? amax / 127 : amax / 8;
        for (let j = 0; j < 32; j++) {
          // Q4_0 maps the extreme to -8, so the other side stops at +7: a whole step there.
          const clamped = type === 'q4' && Math.abs(block[j]) > 7.5 * step;
          expect(Math.abs(y[b * 32 + j] - block[j]), `seed ${seed} block ${b} value ${j}`).toBeLessThanOrEqual((clamped ? step : step / 2) + amax * 1e-3);
        }
      }
    });
  }

  it('rejects a length that is not whole blocks', () => {
    expect(() => quantizeQ8_0(new Float32Array(33))).toThrow(/blocks of 32/);
    expect(() => quantizeQ4_0(new Float32Array(31))).toThrow(/blocks of 32/);
  });
});
