/**
 * Reading results back: what a forward call copies into the MAP_READ staging buffers after its last launch
 * (the 4-byte token, the top-k candidates, or the logits), and how the host reads them out.
 */
import type { Gpu } from '../gpu/device';
import { ShapeError } from '../gpu/errors';
import type { RunState } from './run-state';

export type ForwardRead = 'token' | 'logits' | 'topk';

/** What a forward call ends with: a read for sampling, or the final-normed hidden state of the last token (embeddings). */
export type Readout = ForwardRead | 'hidden';

export type ForwardResult =
  | { kind: 'token'; token: number }
  | { kind: 'logits'; logits: Float32Array }
  /** The k largest logits, best first (ties: lower id first), and their token ids. */
  | { kind: 'topk'; values: Float32Array; indices: Uint32Array };

/** Records the copy of what `read` asks for into its staging buffer; returns the bytes it will read back. */
export function copyToStaging(encoder: GPUCommandEncoder, state: RunState, read: Readout, k: number): number {
  if (read === 'hidden') {
    const bytes = state.lastNorm.buffer.size;
    encoder.copyBufferToBuffer(state.lastNorm.buffer, 0, state.logitsReadback, 0, bytes);
    return bytes;
  }
  if (read === 'topk') {
    const { topValues, topIndices, topKReadback } = state;
    if (!topValues || !topIndices || !topKReadback) throw new ShapeError('model', 'this model was loaded without topKCapacity');
    const bytes = 4 * k;
    encoder.copyBufferToBuffer(topValues.buffer, 0, topKReadback, 0, bytes);
    encoder.copyBufferToBuffer(topIndices.buffer, 0, topKReadback, topKReadback.size / 2, bytes);
    return 2 * bytes;
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
    case 'topk': {
      const staging = state.topKReadback;
      if (!staging) throw new ShapeError('model', 'this model was loaded without topKCapacity');
      const bytes = 4 * k;
      return mapStaging(gpu, staging, (m) => ({
        kind: 'topk',
        values: new Float32Array(m.slice(0, bytes)),
        indices: new Uint32Array(m.slice(staging.size / 2, staging.size / 2 + bytes)),
      }));
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
