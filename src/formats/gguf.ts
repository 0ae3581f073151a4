/**
 * A small GGUF (v3) writer, and an exporter from a Hugging Face Llama checkpoint (safetensors + tokenizer.json)
 * to the layout llama.cpp loads: enough to run the same weights in a peer runtime (src/bench/peer.ts).
 *
 * File layout (little-endian): "GGUF", u32 version = 3, u64 tensor count, u64 metadata count, the metadata
 * key/values, the tensor infos (name, u32 n_dims, u64 dims with ne[0] innermost, u32 type, u64 offset into the
 * data section), padding to general.alignment, then the data section, each tensor aligned to the alignment.
 */
import type { ModelSpec } from '../model/config';
import type { TensorSource } from './safetensors';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** gguf_type: the metadata value types. */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** ggml_type: the tensor element types written here. */
export const GgmlType = { F32: 0, F16: 1 } as const;
export type GgmlTypeId = (typeof GgmlType)[keyof typeof GgmlType];

export type GgufScalar =
  | { type: 'u32'; value: number }
  | { type: 'i32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string };

export type GgufValue =
  | GgufScalar
  | { type: 'array'; itemType: 'u32' | 'i32' | 'f32'; value: ArrayLike<number> }
  | { type: 'array'; itemType: 'string'; value: readonly string[] };

export interface GgufTensor {
  name: string;
  /** Row-major shape, outermost first (as in safetensors / PyTorch); written reversed (ne[0] innermost). */
  shape: readonly number[];
  type: GgmlTypeId;
  /** The elements' bytes, little-endian: F32 → 4 bytes each, F16 → 2 bytes each. */
  data: Uint8Array;
}

export interface GgufContents {
  /** In order; general.alignment is added (as u32 32) unless present. */
  metadata: ReadonlyArray<readonly [string, GgufValue]>;
  tensors: readonly GgufTensor[];
}

export class GgufError extends Error {
  override name = 'GgufError';
}

const u32 = (value: number): GgufValue => ({ type: 'u32', value });
const f32 = (value: number): GgufValue => ({ type: 'f32', value });
const str = (value: string): GgufValue => ({ type: 'string', value });

const SCALAR_TYPE = { u32: GgufValueType.UINT32, i32: GgufValueType.INT32, f32: GgufValueType.FLOAT32, bool: GgufValueType.BOOL, string: GgufValueType.STRING } as const;

const ELEMENT_BYTES: Record<GgmlTypeId, number> = { [GgmlType.F32]: 4, [GgmlType.F16]: 2 };

/** A growable little-endian byte writer. */
class Writer {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private readonly enc = new TextEncoder();

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.reserve(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }
  f32(v: number): void {
    this.reserve(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  u64(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new GgufError(`u64 out of range: ${v}`);
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  string(s: string): void {
    const b = this.enc.encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  padTo(alignment: number): void {
    const pad = (alignment - (this.length % alignment)) % alignment;
    this.reserve(pad);
    this.buf.fill(0, this.length, this.length + pad);
    this.length += pad;
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

function writeScalar(w: Writer, type: 'u32' | 'i32' | 'f32', v: number): void {
  if (type === 'u32') w.u32(v);
  else if (type === 'i32') w.i32(v);
  else w.f32(v);
}

function writeValue(w: Writer, key: string, v: GgufValue): void {
  if (v.type === 'array') {
    w.u32(GgufValueType.ARRAY);
    w.u32(SCALAR_TYPE[v.itemType]);
    w.u64(v.value.length);
    if (v.itemType === 'string') for (const s of v.value) w.string(s);
    else for (let i = 0; i < v.value.length; i++) writeScalar(w, v.itemType, v.value[i]);
    return;
  }
  w.u32(SCALAR_TYPE[v.type]);
  switch (v.type) {
    case 'bool':
      w.u8(v.value ? 1 : 0);
      break;
    case 'string':
      w.string(v.value);
      break;
    default:
      if (typeof v.value !== 'number' || !Number.isFinite(v.value)) throw new GgufError(`metadata ${key}: not a finite number`);
      writeScalar(w, v.type, v.value);
  }
}

/** Serializes a GGUF v3 file. */
export function writeGguf(contents: GgufContents): Uint8Array {
  const metadata = [...contents.metadata];
  const alignEntry = metadata.find(([k]) => k === 'general.alignment');
  if (!alignEntry) metadata.push(['general.alignment', u32(GGUF_DEFAULT_ALIGNMENT)]);
  const alignment = alignEntry && alignEntry[1].type === 'u32' ? alignEntry[1].value : GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment % 8 !== 0) throw new GgufError(`general.alignment must be a positive multiple of 8 (u32), got ${alignment}`);

  const names = new Set<string>();
  const offsets: number[] = [];
  let offset = 0;
  for (const t of contents.tensors) {
    if (names.has(t.name)) throw new GgufError(`duplicate tensor ${t.name}`);
    names.add(t.name);
    if (t.shape.length < 1 || t.shape.length > 4) throw new GgufError(`${t.name}: GGUF tensors have 1 to 4 dims, got ${t.shape.length}`);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.byteLength !== n * ELEMENT_BYTES[t.type]) throw new GgufError(`${t.name}: ${t.data.byteLength} bytes for ${n} elements of type ${t.type}`);
    offsets.push(offset);
    offset += t.data.byteLength;
    offset += (alignment - (offset % alignment)) % alignment;
  }

  const w = new Writer();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(contents.tensors.length);
  w.u64(metadata.length);
  for (const [key, value] of metadata) {
    w.string(key);
    writeValue(w, key, value);
  }
  contents.tensors.forEach((t, i) => {
    w.string(t.name);
    w.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) w.u64(t.shape[d]);
    w.u32(t.type);
    w.u64(offsets[i]);
  });
  w.padTo(alignment);
  for (const t of contents.tensors) {
    w.bytes(t.data);
    w.padTo(alignment);
  }
  return w.result();
}

/**
 * HF Llama q_proj / k_proj rows are in rotate-half order (each head: the first halves of all pairs, then the
 * second halves); llama.cpp rotates adjacent pairs. This is convert_hf_to_gguf.py's `permute`:
 * reshape(nHead, 2, rows/nHead/2, cols).swapaxes(1, 2): GGUF row h·hd + 2i + j = HF row h·hd + j·hd/2 + i.
 * Works on any element size (`rowBytes` = cols × bytes per element).
 */
export function unpermuteRotateHalfRows(hf: Uint8Array, rows: number, rowBytes: number, nHead: number): Uint8Array {
  if (hf.byteLength !== rows * rowBytes) throw new GgufError(`unpermute: ${hf.byteLength} bytes is not ${rows} rows of ${rowBytes}`);
  if (rows % (2 * nHead) !== 0) throw new GgufError(`unpermute: ${rows} rows do not split into ${nHead} heads of pairs`);
  const hd = rows / nHead;
  const half = hd / 2;
  const out = new Uint8Array(hf.byteLength);
  for (let h = 0; h < nHead; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const src = (h * hd + j * half + i) * rowBytes;
        out.set(hf.subarray(src, src + rowBytes), (h * hd + 2 * i + j) * rowBytes);
      }
    }
  }
  return out;
}

/** tokenizer.ggml.token_type values. */
export const GgufTokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

interface HfTokenizerJson {
  model: { type: string; vocab: Record<string, number>; merges?: Array<string | [string, string]>; unk_token?: string | null };
  added_tokens?: Array<{ id: number; content: string; special?: boolean }>;
}

function asTokenizerJson(json: unknown): HfTokenizerJson {
  const t = json as HfTokenizerJson;
  if (typeof t !== 'object' || t === null || typeof t.model !== 'object' || t.model === null || typeof t.model.vocab !== 'object') {
    throw new GgufError('tokenizer.json has no model.vocab');
  }
  return t;
}

/**
 * The SentencePiece-style vocabulary llama.cpp's "llama" tokenizer wants, from a tokenizer.json whose model is
 * BPE with byte fallback (as HF converts SentencePiece Llama tokenizers): tokens by id; scores rank merges
 * (a token made by merge r scores -r, so earlier merges win; others -id), 0 for bytes and specials.
 */
export function llamaVocab(tokenizerJson: unknown, vocabSize: number): { tokens: string[]; scores: Float32Array; types: Int32Array; unkId: number | null } {
  const t = asTokenizerJson(tokenizerJson);
  if (t.model.type !== 'BPE') throw new GgufError(`tokenizer model ${t.model.type}: only BPE (SentencePiece-converted) is exported`);
  const tokens: string[] = new Array<string>(vocabSize).fill('');
  const filled = new Uint8Array(vocabSize);
  const special = new Set<number>();
  for (const [tok, id] of Object.entries(t.model.vocab)) {
    if (id >= 0 && id < vocabSize) {
      tokens[id] = tok;
      filled[id] = 1;
    }
  }
  for (const a of t.added_tokens ?? []) {
    if (a.id >= 0 && a.id < vocabSize) {
      tokens[a.id] = a.content;
      filled[a.id] = 1;
      if (a.special) special.add(a.id);
    }
  }
  const mergeRank = new Map<string, number>();
  (t.model.merges ?? []).forEach((m, r) => {
    const [a, b] = typeof m === 'string' ? m.split(' ') : m;
    const merged = `${a}${b}`;
    if (!mergeRank.has(merged)) mergeRank.set(merged, r);
  });
  const unkName = t.model.unk_token ?? null;
  let unkId: number | null = null;
  const scores = new Float32Array(vocabSize);
  const types = new Int32Array(vocabSize);
  for (let id = 0; id < vocabSize; id++) {
    const tok = tokens[id];
    if (!filled[id]) {
      tokens[id] = `[PAD${id}]`;
      types[id] = GgufTokenType.UNUSED;
    } else if (unkName !== null && tok === unkName) {
      types[id] = GgufTokenType.UNKNOWN;
      unkId = id;
    } else if (special.has(id)) {
      types[id] = GgufTokenType.CONTROL;
    } else if (/^<0x[0-9A-Fa-f]{2}>$/.test(tok)) {
      types[id] = GgufTokenType.BYTE;
    } else {
      types[id] = GgufTokenType.NORMAL;
      const r = mergeRank.get(tok);
      scores[id] = -(r ?? id);
    }
  }
  return { tokens, scores, types, unkId };
}

/**
 * A GGUF (architecture "llama", F32 or F16 as stored) from a Hugging Face Llama checkpoint: HF tensor names,
 * q/k rows un-permuted to llama.cpp's interleaved rope order, output.weight omitted when tied.
 */
export async function llamaToGguf(spec: ModelSpec, source: TensorSource, tokenizerJson: unknown, name = 'model'): Promise<Uint8Array> {
  if (spec.arch !== 'llama') throw new GgufError(`only arch llama is exported, got ${spec.arch}`);
  if (!spec.rope || spec.rope.scaling) throw new GgufError('rope scaling is not exported');
  if (spec.qkvBias || spec.outputBias || spec.mlpBias || spec.norm.kind !== 'rms' || !spec.gatedMlp) throw new GgufError('only the plain Llama block (no biases, RMSNorm, SwiGLU) is exported');

  const tensors: GgufTensor[] = [];
  const add = async (hfName: string, ggufName: string, unpermuteHeads?: number): Promise<void> => {
    const info = source.tensors.get(hfName);
    if (!info) throw new GgufError(`checkpoint has no ${hfName}`);
    const type = info.dtype === 'F32' ? GgmlType.F32 : info.dtype === 'F16' ? GgmlType.F16 : null;
    if (type === null) throw new GgufError(`${hfName}: dtype ${info.dtype} is not exported (F32, F16 only)`);
    let data = await source.readTensorBytes(hfName);
    if (unpermuteHeads !== undefined) {
      const [rows, cols] = info.shape;
      data = unpermuteRotateHalfRows(data, rows, cols * ELEMENT_BYTES[type], unpermuteHeads);
    }
    tensors.push({ name: ggufName, shape: info.shape, type, data });
  };

  await add('model.embed_tokens.weight', 'token_embd.weight');
  for (let l = 0; l < spec.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const b = `blk.${l}.`;
    await add(`${p}input_layernorm.weight`, `${b}attn_norm.weight`);
    await add(`${p}self_attn.q_proj.weight`, `${b}attn_q.weight`, spec.numHeads);
    await add(`${p}self_attn.k_proj.weight`, `${b}attn_k.weight`, spec.numKvHeads);
    await add(`${p}self_attn.v_proj.weight`, `${b}attn_v.weight`);
    await add(`${p}self_attn.o_proj.weight`, `${b}attn_output.weight`);
    await add(`${p}post_attention_layernorm.weight`, `${b}ffn_norm.weight`);
    await add(`${p}mlp.gate_proj.weight`, `${b}ffn_gate.weight`);
    await add(`${p}mlp.up_proj.weight`, `${b}ffn_up.weight`);
    await add(`${p}mlp.down_proj.weight`, `${b}ffn_down.weight`);
  }
  await add('model.norm.weight', 'output_norm.weight');
  if (!spec.tiedEmbeddings) await add('lm_head.weight', 'output.weight');

  const vocab = llamaVocab(tokenizerJson, spec.vocabSize);
  const metadata: Array<[string, GgufValue]> = [
    ['general.architecture', str('llama')],
    ['general.name', str(name)],
    ['general.alignment', u32(GGUF_DEFAULT_ALIGNMENT)],
    ['general.file_type', u32(tensors.every((t) => t.type === GgmlType.F32) ? 0 : 1)],
    ['llama.vocab_size', u32(spec.vocabSize)],
    ['llama.context_length', u32(spec.maxContext)],
    ['llama.embedding_length', u32(spec.hiddenSize)],
    ['llama.block_count', u32(spec.numLayers)],
    ['llama.feed_forward_length', u32(spec.intermediateSize)],
    ['llama.attention.head_count', u32(spec.numHeads)],
    ['llama.attention.head_count_kv', u32(spec.numKvHeads)],
    ['llama.attention.key_length', u32(spec.headDim)],
    ['llama.attention.value_length', u32(spec.headDim)],
    ['llama.rope.dimension_count', u32(spec.rope.rotaryDim)],
    ['llama.rope.freq_base', f32(spec.rope.theta)],
    ['llama.attention.layer_norm_rms_epsilon', f32(spec.norm.eps)],
    ['tokenizer.ggml.model', str('llama')],
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: vocab.tokens }],
    ['tokenizer.ggml.scores', { type: 'array', itemType: 'f32', value: vocab.scores }],
    ['tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: vocab.types }],
  ];
  if (spec.bosTokenId !== null) metadata.push(['tokenizer.ggml.bos_token_id', u32(spec.bosTokenId)]);
  if (spec.eosTokenIds.length) metadata.push(['tokenizer.ggml.eos_token_id', u32(spec.eosTokenIds[0])]);
  if (vocab.unkId !== null) metadata.push(['tokenizer.ggml.unknown_token_id', u32(vocab.unkId)]);
  metadata.push(['tokenizer.ggml.add_bos_token', { type: 'bool', value: spec.bosTokenId !== null }]);
  metadata.push(['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }]);
  return writeGguf({ metadata, tensors });
}
