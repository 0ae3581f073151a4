/**
 * Exports a Hugging Face Llama checkpoint (safetensors + tokenizer.json) to the GGUF layout llama.cpp loads, so
 * the WASM backend (src/wasm/) and the peer benchmark run the same weights in wllama. Tensor names come from the
 * architecture table.
 */
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGML_BLOCK,
  GgmlType,
  quantizeQ4_0,
  quantizeQ8_0,
  GgufError,
  f32Value,
  stringValue,
  u32Value,
  writeGgufBlob,
  type GgmlTypeId,
  type GgufTensor,
  type GgufValue,
} from './gguf';
import type { TensorSource } from './safetensors';
import {
  architectureOf,
  INPUT_TENSOR_NAMES,
  LAYER_TENSOR_NAMES,
  LAYER_TENSORS,
  MODEL_TENSORS,
  OUTPUT_TENSOR_NAMES,
  type CanonicalTensor,
  type LayerTensorName,
  type ModelTensorName,
  type TensorSource as CheckpointSource,
} from '../model/architectures';
import type { ModelSpec } from '../model/config';
import { f16BitsToF32 } from '../gpu/f16';

export interface GgufExportOptions {
  /** general.name (default 'model'). */
  name?: string;
  /**
   * Weight matrices as Q8_0 or Q4_0 (llama.cpp's blocks of 32 with an f16 scale), the formats matching the GPU
   * path's q8/q4; the embedding, norms and matrices whose rows are not a multiple of 32 stay as stored.
   */
  quantize?: 'q8' | 'q4';
}

/** A checkpoint tensor's elements as f32, for quantizing (or BF16, which llama.cpp gets as F32). */
function toF32(bytes: Uint8Array, dtype: string): Float32Array {
  const n = bytes.byteLength / (dtype === 'F32' ? 4 : 2);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  if (dtype === 'F32') for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
  else if (dtype === 'F16') for (let i = 0; i < n; i++) out[i] = f16BitsToF32(view.getUint16(2 * i, true));
  else for (let i = 0; i < n; i++) out[i] = new Float32Array(new Uint32Array([view.getUint16(2 * i, true) << 16]).buffer)[0];
  return out;
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

/** The first code point of the token-id alphabet: planes 2 and up hold more code points than any vocabulary has ids. */
const TOKEN_ID_ALPHABET_START = 0x20000;

/**
 * A vocabulary in which token `id` is the single character U+20000 + id, for runtimes that tokenize on our side:
 * llama.cpp's SentencePiece tokenizer (no merges apply, no space prefix) turns `tokenIdText(ids)` back into
 * exactly `ids`, in linear time, whatever tokenizer the model really has.
 */
export function tokenIdVocab(vocabSize: number): { tokens: string[]; scores: Float32Array; types: Int32Array; unkId: null } {
  if (TOKEN_ID_ALPHABET_START + vocabSize > 0x10ffff) throw new GgufError(`a vocabulary of ${vocabSize} does not fit the token-id alphabet`);
  const tokens = Array.from({ length: vocabSize }, (_, id) => String.fromCodePoint(TOKEN_ID_ALPHABET_START + id));
  return { tokens, scores: new Float32Array(vocabSize), types: new Int32Array(vocabSize).fill(GgufTokenType.NORMAL), unkId: null };
}

/** The text that a GGUF written with the token-id vocabulary (tokenizerJson null) tokenizes to `ids`. */
export function tokenIdText(ids: readonly number[]): string {
  return String.fromCodePoint(...ids.map((id) => TOKEN_ID_ALPHABET_START + id));
}

/** GGUF names of the canonical tensors llama.cpp's "llama" architecture has (per layer: one per row block). */
const GGUF_NAMES: { model: { [K in ModelTensorName]?: readonly string[] }; layer: { [K in LayerTensorName]?: readonly string[] } } = {
  model: { embedding: ['token_embd.weight'], finalNorm: ['output_norm.weight'], lmHead: ['output.weight'] },
  layer: {
    attnNorm: ['attn_norm.weight'],
    wqkv: ['attn_q.weight', 'attn_k.weight', 'attn_v.weight'],
    wo: ['attn_output.weight'],
    mlpNorm: ['ffn_norm.weight'],
    wGateUp: ['ffn_gate.weight', 'ffn_up.weight'],
    wDown: ['ffn_down.weight'],
  },
};

/**
 * A GGUF (architecture "llama"; F32 or F16 as stored, BF16 as F32, matrices Q8_0/Q4_0 when asked) from a
 * Hugging Face Llama checkpoint, its tensors found through the architecture table: one GGUF tensor per row
 * block, q/k rows un-permuted to llama.cpp's interleaved rope order, output.weight omitted when tied. The
 * vocabulary comes from tokenizer.json, or with `tokenizerJson` null is the token-id alphabet (tokenIdVocab).
 */
export async function llamaToGguf(spec: ModelSpec, source: TensorSource, tokenizerJson: unknown | null, options: GgufExportOptions = {}): Promise<Blob> {
  const { name = 'model', quantize } = options;
  // Mistral without a sliding window is a Llama block; llama.cpp's "llama" graph has no window.
  const plainLlama = spec.arch === 'llama' || (spec.arch === 'mistral' && spec.layerAttention.every((l) => l.window === 0));
  if (!plainLlama) throw new GgufError(`only the Llama block is exported (arch llama, or mistral without a sliding window), got ${spec.arch}`);
  if (!spec.rope || spec.rope.scaling) throw new GgufError('rope scaling is not exported');
  if (spec.qkvBias || spec.outputBias || spec.mlpBias || spec.norm.kind !== 'rms' || !spec.gatedMlp) throw new GgufError('only the plain Llama block (no biases, RMSNorm, SwiGLU) is exported');

  const map = architectureOf(spec).tensors;
  // Each tensor goes into a Blob as soon as it is converted, so the JS heap holds one tensor at a time.
  const tensors: GgufTensor<Blob>[] = [];
  /** Adds canonical tensor `t` from its checkpoint tensors (one per row block) under `ggufNames`. */
  const add = async (t: CanonicalTensor, checkpointSource: CheckpointSource | undefined, hf: (n: string) => string, ggufNames: readonly string[] | undefined): Promise<void> => {
    if (!t.present(spec)) return;
    if (ggufNames === undefined || checkpointSource === undefined || typeof checkpointSource !== 'string' && 'transposed' in checkpointSource) {
      throw new GgufError(`the ${t.label} is not exported`);
    }
    const sources = typeof checkpointSource === 'string' ? [checkpointSource] : checkpointSource.blocks;
    if (sources.length !== ggufNames.length) throw new GgufError(`the ${t.label} is stored in ${sources.length} tensors, GGUF wants ${ggufNames.length}`);
    for (const [i, hfName] of sources.map(hf).entries()) {
      const info = source.tensors.get(hfName);
      if (!info) throw new GgufError(`checkpoint has no ${hfName}`);
      if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16') throw new GgufError(`${hfName}: dtype ${info.dtype} is not exported (F32, F16, BF16 only)`);
      let data = await source.readTensorBytes(hfName);
      let type: GgmlTypeId = info.dtype === 'F16' ? GgmlType.F16 : GgmlType.F32;
      if (info.dtype === 'BF16') data = new Uint8Array(toF32(data, info.dtype).buffer);
      const cols = info.shape[info.shape.length - 1];
      // q and k (the first two blocks of wqkv) rotate in pairs in llama.cpp.
      const heads = t === LAYER_TENSORS.wqkv && i < 2 ? [spec.numHeads, spec.numKvHeads][i] : undefined;
      if (heads !== undefined) data = unpermuteRotateHalfRows(data, info.shape[0], cols * GGML_BLOCK[type].bytes, heads);
      if (quantize && info.shape.length === 2 && t !== MODEL_TENSORS.embedding && cols % 32 === 0) {
        const values = toF32(data, type === GgmlType.F16 ? 'F16' : 'F32');
        [type, data] = quantize === 'q8' ? [GgmlType.Q8_0, quantizeQ8_0(values)] : [GgmlType.Q4_0, quantizeQ4_0(values)];
      }
      tensors.push({ name: ggufNames[i], shape: info.shape, type, data: new Blob([data as Uint8Array<ArrayBuffer>]) });
    }
  };
  const model = (n: ModelTensorName) =>
    add(MODEL_TENSORS[n], map.model[n], (hf) => (n === 'lmHead' ? hf : map.prefixes[0] + hf), GGUF_NAMES.model[n]);

  for (const n of INPUT_TENSOR_NAMES) await model(n);
  for (let l = 0; l < spec.numLayers; l++) {
    const hf = (n: string) => `${map.prefixes[0]}${map.layerPrefix}${l}.${n}`;
    for (const n of LAYER_TENSOR_NAMES) await add(LAYER_TENSORS[n], map.layer[n], hf, GGUF_NAMES.layer[n]?.map((g) => `blk.${l}.${g}`));
  }
  for (const n of OUTPUT_TENSOR_NAMES) await model(n);

  const vocab = tokenizerJson === null ? tokenIdVocab(spec.vocabSize) : llamaVocab(tokenizerJson, spec.vocabSize);
  const metadata: Array<[string, GgufValue]> = [
    ['general.architecture', stringValue('llama')],
    ['general.name', stringValue(name)],
    ['general.alignment', u32Value(GGUF_DEFAULT_ALIGNMENT)],
    // llama_ftype: ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7.
    ['general.file_type', u32Value(quantize === 'q8' ? 7 : quantize === 'q4' ? 2 : tensors.every((t) => t.type === GgmlType.F32) ? 0 : 1)],
    ['llama.vocab_size', u32Value(spec.vocabSize)],
    ['llama.context_length', u32Value(spec.maxContext)],
    ['llama.embedding_length', u32Value(spec.hiddenSize)],
    ['llama.block_count', u32Value(spec.numLayers)],
    ['llama.feed_forward_length', u32Value(spec.intermediateSize)],
    ['llama.attention.head_count', u32Value(spec.numHeads)],
    ['llama.attention.head_count_kv', u32Value(spec.numKvHeads)],
    ['llama.attention.key_length', u32Value(spec.headDim)],
    ['llama.attention.value_length', u32Value(spec.headDim)],
    ['llama.rope.dimension_count', u32Value(spec.rope.rotaryDim)],
    ['llama.rope.freq_base', f32Value(spec.rope.theta)],
    ['llama.attention.layer_norm_rms_epsilon', f32Value(spec.norm.eps)],
    ['tokenizer.ggml.model', stringValue('llama')],
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: vocab.tokens }],
    ['tokenizer.ggml.scores', { type: 'array', itemType: 'f32', value: vocab.scores }],
    ['tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: vocab.types }],
  ];
  if (spec.bosTokenId !== null) metadata.push(['tokenizer.ggml.bos_token_id', u32Value(spec.bosTokenId)]);
  if (spec.eosTokenIds.length) metadata.push(['tokenizer.ggml.eos_token_id', u32Value(spec.eosTokenIds[0])]);
  if (vocab.unkId !== null) metadata.push(['tokenizer.ggml.unknown_token_id', u32Value(vocab.unkId)]);
  // The token-id alphabet is read as given: no BOS added, no space in front.
  metadata.push(['tokenizer.ggml.add_bos_token', { type: 'bool', value: tokenizerJson !== null && spec.bosTokenId !== null }]);
  metadata.push(['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }]);
  if (tokenizerJson === null) metadata.push(['tokenizer.ggml.add_space_prefix', { type: 'bool', value: false }]);
  return writeGgufBlob({ metadata, tensors });
}
