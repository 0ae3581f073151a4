/**
 * Reading results back: what a forward call copies into the MAP_READ staging buffers after its last launch
 * (the 4-byte token, the top-k candidates, those and the log-sum-exp, or the logits), and how the host reads
 * them out.
 */
import type { Gpu } from '../gpu/device';
import { ShapeError } from '../gpu/errors';
import type { RunState } from './run-state';

export type ForwardRead = 'token' | 'logits' | 'topk' | 'logprobs';

/** What a forward call ends with: a read for sampling, or the final-normed hidden state of the last token (embeddings). */
export type Readout = ForwardRead | 'hidden';

export type ForwardResult =
  | { kind: 'token'; token: number }
  | { kind: 'logits'; logits: Float32Array }
  /** The k largest logits, best first (ties: lower id first), and their token ids. */
  | { kind: 'topk'; values: Float32Array; indices: Uint32Array }
  /**
   * The k largest logits and their ids as for 'topk', and log Σ exp over the whole row: each candidate's
   * log-probability is its value minus logSumExp, and the greedy token is indices[0].
   */
  | { kind: 'logprobs'; values: Float32Array; indices: Uint32Array; logSumExp: number };

/** Where the top-k staging buffer holds the candidates' ids, and the log-sum-exp, for a capacity. */
function topKStagingOffsets(capacity: number): { indices: number; logSumExp: number } {
  return { indices: 4 * capacity, logSumExp: 8 * capacity };
}

/** Bytes of the top-k staging buffer: values, ids and the log-sum-exp. */
export function topKStagingBytes(capacity: number): number {
  return 8 * capacity + 4;
}

/** Records the copy of what `read` asks for into its staging buffer; returns the bytes it will read back. */
export function copyToStaging(encoder: GPUCommandEncoder, state: RunState, read: Readout, k: number): number {
  if (read === 'hidden') {
    const bytes = state.lastNorm.buffer.size;
    encoder.copyBufferToBuffer(state.lastNorm.buffer, 0, state.logitsReadback, 0, bytes);
    return bytes;
  }
  if (read === 'topk' || read === 'logprobs') {
    const { topValues, topIndices, topKReadback, logSumExp } = state;
    if (!topValues || !topIndices || !topKReadback || !logSumExp) throw new ShapeError('model', 'this model was loaded without topKCapacity');
    const bytes = 4 * k;
    const offsets = topKStagingOffsets(topValues.shape[0]);
    encoder.copyBufferToBuffer(topValues.buffer, 0, topKReadback, 0, bytes);
    encoder.copyBufferToBuffer(topIndices.buffer, 0, topKReadback, offsets.indices, bytes);
    if (read === 'topk') return 2 * bytes;
    encoder.copyBufferToBuffer(logSumExp.buffer, 0, topKReadback, offsets.logSumExp, 4);
    return 2 * bytes + 4;
  }
  const staging = read === 'token' ? state.tokenReadback : state.logitsReadback;
  const source = read === 'token' ? state.next.buffer : state.logits.buffer;
  // The logits staging is also the hidden-state one, so it can be longer than the logits (D > V).
  encoder.copyBufferToBuffer(source, 0, staging, 0, source.size);
  return source.size;
}

/** Maps the staging buffer of `read` (after the submit that filled it) and copies the result out. */
export async function readStaging(gpu: Gpu, state: RunState, read: ForwardRead, k: number): Promise<ForwardResult> {
  switch (read) {
    case 'token':
      return { kind: 'token', token: await mapStaging(gpu, state.tokenReadback, (m) => new Uint32Array(m, 0, 1)[0]) };
    case 'logits':
      return { kind: 'logits', logits: await readStagedLogits(gpu, state) };
    case 'topk':
    case 'logprobs': {
      const staging = state.topKReadback;
      if (!staging || !state.topValues) throw new ShapeError('model', 'this model was loaded without topKCapacity');
      const bytes = 4 * k;
      const offsets = topKStagingOffsets(state.topValues.shape[0]);
      return mapStaging(gpu, staging, (m) => {
        const values = new Float32Array(m.slice(0, bytes));
        const indices = new Uint32Array(m.slice(offsets.indices, offsets.indices + bytes));
        if (read === 'topk') return { kind: 'topk', values, indices };
        return { kind: 'logprobs', values, indices, logSumExp: new Float32Array(m, offsets.logSumExp, 1)[0] };
      });
    }
  }
}

/** The final-normed hidden state [D] a 'hidden' readout copied to staging. */
export function readStagedHidden(gpu: Gpu, state: RunState): Promise<Float32Array> {
  return mapStaging(gpu, state.logitsReadback, (m) => new Float32Array(m.slice(0, state.lastNorm.buffer.size)));
}

export function readStagedLogits(gpu: Gpu, state: RunState): Promise<Float32Array> {
  return mapStaging(gpu, state.logitsReadback, (m) => new Float32Array(m.slice(0, state.logits.buffer.size)));
}

async function mapStaging<T>(gpu: Gpu, staging: GPUBuffer, read: (mapped: ArrayBuffer) => T): Promise<T> {
  await Promise.race([staging.mapAsync(GPUMapMode.READ), gpu.lost.then((e) => Promise.reject(e))]);
  try {
    return read(staging.getMappedRange());
  } finally {
    staging.unmap();
  }
}

/** The argmax kernel's answer for a row it flags: NaN or +Infinity in it, or no finite value. */
const NON_FINITE_TOKEN = 0xffffffff;

/**
 * Whether a sampler can use what a forward call read: argmax and top-k flag broken logits on the GPU
 * (a flagged token id; a non-finite best value); a full row is scanned here.
 */
export function usable(result: ForwardResult): boolean {
  switch (result.kind) {
    case 'token':
      return result.token !== NON_FINITE_TOKEN;
    case 'topk':
      return Number.isFinite(result.values[0]);
    case 'logprobs':
      return Number.isFinite(result.values[0]) && Number.isFinite(result.logSumExp);
    case 'logits': {
      let finite = false;
      for (const v of result.logits) {
        if (Number.isNaN(v) || v === Infinity) return false;
        finite ||= v !== -Infinity;
      }
      return finite;
    }
  }
}
