/**
 * What to tell the user about an error: a title, the error's own message (which already says what
 * happened), and what to do next. Errors from the worker arrive rebuilt with their class, so `instanceof`
 * works here.
 */
import { ContextWindowExceededError } from '../engine/errors';
import { DeviceLostError, GpuOutOfMemoryError, LimitsExceededError, WebGPUUnavailableError } from '../gpu/errors';
import { ContextFullError } from '../model/forward';
import { DownloadError, IntegrityError, StorageQuotaError } from '../storage';

export type ErrorKind = 'no-webgpu' | 'device-lost' | 'gpu-memory' | 'storage' | 'download' | 'context' | 'other';

export interface ErrorDescription {
  kind: ErrorKind;
  title: string;
  /** The error's message: what happened, in the engine's words. */
  detail: string;
  /** What the user can do about it. */
  hint: string;
}

const WEBGPU_HELP =
  'Use a browser with WebGPU: Chrome or Edge 113+ on Windows, macOS or ChromeOS (Chrome 121+ on Android), ' +
  'Safari 26+ on macOS and iOS, or Firefox 141+ on Windows. On Linux, Chrome needs WebGPU switched on at ' +
  'chrome://flags/#enable-unsafe-webgpu (and Vulkan at chrome://flags/#enable-vulkan). The page must come ' +
  'over HTTPS or from localhost; chrome://gpu shows whether WebGPU is hardware accelerated.';

export function describeError(error: unknown): ErrorDescription {
  const detail = error instanceof Error ? error.message : String(error);
  if (error instanceof WebGPUUnavailableError) return { kind: 'no-webgpu', title: 'WebGPU is not available', detail, hint: WEBGPU_HELP };
  if (error instanceof DeviceLostError) {
    return {
      kind: 'device-lost',
      title: 'The GPU device was lost',
      detail,
      hint: 'This happens after a driver reset or when the system reclaims GPU memory. Reload the model; the conversation is kept.',
    };
  }
  if (error instanceof GpuOutOfMemoryError || error instanceof LimitsExceededError) {
    return {
      kind: 'gpu-memory',
      title: error instanceof GpuOutOfMemoryError ? 'Out of GPU memory' : 'The model exceeds this GPU’s limits',
      detail,
      hint: 'Pick a smaller model, f16 weights, or a shorter context; close other GPU-heavy tabs.',
    };
  }
  if (error instanceof StorageQuotaError || error instanceof IntegrityError) {
    return { kind: 'storage', title: 'Model storage problem', detail, hint: 'Delete cached models you no longer need (Models panel), then load again.' };
  }
  if (error instanceof DownloadError) {
    return { kind: 'download', title: 'The download failed', detail, hint: 'Loading the model again resumes the download where it stopped.' };
  }
  if (error instanceof ContextWindowExceededError || error instanceof ContextFullError) {
    return { kind: 'context', title: 'The conversation is too long', detail, hint: 'Start a new chat, or lower “Max tokens”.' };
  }
  const name = error instanceof Error ? error.name : 'Error';
  return { kind: 'other', title: name === 'Error' ? 'Something went wrong' : name, detail, hint: '' };
}

/** The same check acquireGpu makes, done in the page before a worker is started for nothing. */
export function checkWebGpu(): void {
  if (navigator.gpu) return;
  throw new WebGPUUnavailableError(
    isSecureContext ? 'navigator.gpu is missing in this browser' : 'this page is not a secure context (serve it over https or from localhost)',
  );
}
