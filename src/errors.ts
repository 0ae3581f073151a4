/**
 * Every typed error the library throws, in one table: its class, the kind of problem it is for a user, and
 * what to tell them. The worker protocol rebuilds errors by the row's name, the UI describes them from the
 * row, and `src/index.ts` exports every class listed here (test/errors.test.ts checks that, and that every
 * error class under src/ has a row). Adding an error is adding its row.
 */
import { ChatTemplateError } from './chat/template';
import { InvalidRequestError } from './chat/messages';
import { UnsupportedTaskError } from './embeddings/errors';
import { EngineDisposedError } from './engine/errors';
import { SafetensorsError } from './formats/errors';
import { GgufError } from './formats/gguf';
import {
  DeviceLostError,
  GpuOutOfMemoryError,
  GpuValidationError,
  LimitsExceededError,
  NumericalError,
  ShaderCompileError,
  ShapeError,
  WebGPUUnavailableError,
} from './gpu/errors';
import { ModelConfigError, UnsupportedModelError } from './model/config';
import { ModelFileMissingError, ModelFileTooLargeError } from './model/files';
import { ContextWindowExceededError } from './model/kv-cache';
import { UnsupportedEncoderError } from './model/encoder/encoder-model';
import { ModelWeightsError } from './model/weights';
import { AccessTokenError, GatedModelError, HttpError } from './net';
import { InvalidOptionError } from './sampling/options';
import { NoCandidateTokenError } from './sampling/sampler';
import { IntegrityError, StorageQuotaError } from './storage/errors';
import { InputTooLongError, TokenizerError } from './tokenizer/tokenizer';
import { WasmBackendError } from './wasm/errors';
import { WorkerStartError } from './worker/protocol';

/**
 * What kind of problem an error is for the person using the app; the UI groups its banners by it, the
 * OpenAI-compatible server its HTTP statuses. 'request': what was asked (messages, options, the text to
 * encode) must change.
 */
export type ErrorKind = 'no-webgpu' | 'device-lost' | 'gpu-memory' | 'storage' | 'download' | 'context' | 'request' | 'other';

export interface ErrorRow {
  // Any constructor signature: the table only needs the prototype and instanceof.
  readonly type: abstract new (...args: never[]) => Error;
  readonly kind: ErrorKind;
  /** The headline for the user; the error's name when absent. */
  readonly title?: string;
  /** What the user can do about it; empty when there is nothing useful to say. A function where it depends on the instance. */
  readonly hint?: string | ((error: Error) => string);
}

const WEBGPU_HELP =
  'Use a browser with WebGPU: Chrome or Edge 113+ on Windows, macOS or ChromeOS (Chrome 121+ on Android), ' +
  'Safari 26+ on macOS and iOS, or Firefox 141+ on Windows. On Linux, Chrome needs WebGPU switched on at ' +
  'chrome://flags/#enable-unsafe-webgpu (and Vulkan at chrome://flags/#enable-vulkan). The page must come ' +
  'over HTTPS or from localhost; chrome://gpu shows whether WebGPU is hardware accelerated.';
const GPU_MEMORY_HINT = 'Pick a smaller model, f16 weights, or a shorter context; close other GPU-heavy tabs.';
const STORAGE_HINT = 'Delete cached models you no longer need (Models panel), then load again.';

/**
 * Keyed by the `name` the instances carry, spelled out because a minified build renames the classes
 * themselves (the test checks each key against its class).
 */
export const ERRORS = {
  AccessTokenError: { type: AccessTokenError, kind: 'request', title: 'The access token cannot be used', hint: 'Paste the token again (Models panel).' },
  ChatTemplateError: { type: ChatTemplateError, kind: 'request' },
  ContextWindowExceededError: {
    type: ContextWindowExceededError,
    kind: 'context',
    title: 'The conversation is too long',
    hint: 'Start a new chat, or lower “Max tokens”.',
  },
  DeviceLostError: {
    type: DeviceLostError,
    kind: 'device-lost',
    title: 'The GPU device was lost',
    hint: 'This happens after a driver reset or when the system reclaims GPU memory. Reload the model; the conversation is kept.',
  },
  EngineDisposedError: { type: EngineDisposedError, kind: 'other' },
  GatedModelError: {
    type: GatedModelError,
    kind: 'download',
    title: 'This model needs a Hugging Face access token',
    hint: 'Accept the model’s license on its Hugging Face page while signed in, add an access token (read) in the Models panel, and load again.',
  },
  GgufError: { type: GgufError, kind: 'other' },
  GpuOutOfMemoryError: { type: GpuOutOfMemoryError, kind: 'gpu-memory', title: 'Out of GPU memory', hint: GPU_MEMORY_HINT },
  GpuValidationError: { type: GpuValidationError, kind: 'other' },
  HttpError: {
    type: HttpError,
    kind: 'download',
    title: 'The download failed',
    // Only a transfer that may succeed later resumes; a 404 or an HTML page needs another URL.
    hint: (e) =>
      e instanceof HttpError && e.retryable
        ? 'Loading the model again resumes the download where it stopped.'
        : 'Check the model URL (and access rights for a gated model), then load again.',
  },
  IntegrityError: { type: IntegrityError, kind: 'storage', title: 'Model storage problem', hint: STORAGE_HINT },
  InputTooLongError: { type: InputTooLongError, kind: 'request', title: 'The input is too long for the model', hint: 'Shorten it, or ask for truncation (truncate: true).' },
  InvalidOptionError: { type: InvalidOptionError, kind: 'request' },
  InvalidRequestError: { type: InvalidRequestError, kind: 'request' },
  LimitsExceededError: { type: LimitsExceededError, kind: 'gpu-memory', title: 'The model exceeds this GPU’s limits', hint: GPU_MEMORY_HINT },
  ModelConfigError: { type: ModelConfigError, kind: 'other' },
  ModelFileMissingError: { type: ModelFileMissingError, kind: 'other' },
  ModelFileTooLargeError: { type: ModelFileTooLargeError, kind: 'other' },
  ModelWeightsError: { type: ModelWeightsError, kind: 'other' },
  NoCandidateTokenError: { type: NoCandidateTokenError, kind: 'other' },
  NumericalError: {
    type: NumericalError,
    kind: 'other',
    title: 'The model produced invalid numbers',
    hint: 'The weights may be corrupt or badly converted: try another copy of the model, or f32 weights. You can keep chatting.',
  },
  SafetensorsError: { type: SafetensorsError, kind: 'other' },
  ShaderCompileError: { type: ShaderCompileError, kind: 'other' },
  ShapeError: { type: ShapeError, kind: 'other' },
  StorageQuotaError: { type: StorageQuotaError, kind: 'storage', title: 'Model storage problem', hint: STORAGE_HINT },
  TokenizerError: { type: TokenizerError, kind: 'request' },
  UnsupportedEncoderError: { type: UnsupportedEncoderError, kind: 'other' },
  UnsupportedModelError: { type: UnsupportedModelError, kind: 'other' },
  UnsupportedTaskError: { type: UnsupportedTaskError, kind: 'request' },
  WasmBackendError: { type: WasmBackendError, kind: 'other', title: 'The CPU (WebAssembly) backend failed' },
  WebGPUUnavailableError: { type: WebGPUUnavailableError, kind: 'no-webgpu', title: 'WebGPU is not available', hint: WEBGPU_HELP },
  WorkerStartError: { type: WorkerStartError, kind: 'other' },
} satisfies Record<string, ErrorRow>;

const ROWS: ReadonlyMap<string, ErrorRow> = new Map(Object.entries(ERRORS));

/** The row of an error's class, found by the name its instances carry. */
export function errorRow(name: string): ErrorRow | undefined {
  return ROWS.get(name);
}

export interface ErrorDescription {
  kind: ErrorKind;
  title: string;
  /** The error's message: what happened, in the library's words. */
  detail: string;
  /** What the user can do about it. */
  hint: string;
}

/** What to tell the user about an error: its row's title and hint, and the error's own message. */
export function describeError(error: unknown): ErrorDescription {
  const detail = error instanceof Error ? error.message : String(error);
  const name = error instanceof Error ? error.name : 'Error';
  const row = errorRow(name);
  if (row && error instanceof row.type) {
    const hint = typeof row.hint === 'function' ? row.hint(error) : (row.hint ?? '');
    return { kind: row.kind, title: row.title ?? name, detail, hint };
  }
  return { kind: 'other', title: name === 'Error' ? 'Something went wrong' : name, detail, hint: '' };
}
