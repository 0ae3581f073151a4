/**
 * The types the engine's callers see: options, streamed deltas and results, and the OpenAI-shaped chat
 * completion request and responses. The engine, chat completions, the worker protocol and the UI all share
 * these, so none of them has to import another's implementation for a type.
 */
import type { Gpu } from '../gpu/device';
import type { BackendRequest } from './backend';
import type { ModelFiles } from '../model/files';
import type { LoadModelOptions } from '../model/load';
import type { FinishReason } from '../sampling/finish';
import type { SamplingOptions } from '../sampling/options';
import type { ResponseFormat } from '../structured/response-format';
import type { Tool, ToolCall, ToolCallDelta, ToolChoice } from '../chat/tools';

export type { ResponseFormat, Tool, ToolCall, ToolCallDelta, ToolChoice };

export type { FinishReason };

export interface EngineOptions extends LoadModelOptions {
  /**
   * 'auto' (default): WebGPU on a hardware adapter; the CPU path (llama.cpp in WebAssembly, browsers only) when
   * there is no WebGPU, no adapter, or only a software one. 'webgpu' or 'wasm' force one.
   */
  backend?: BackendRequest;
  /** Where wllama.wasm is served from (WASM backend); default: the copy the build emits. */
  wasmUrl?: string;
  /** The GPU to run on; default: acquired from `navigator.gpu` (Node passes `await acquireNodeGpu()`). */
  gpu?: Gpu;
  /** Cancels the download of a model given by URL. */
  signal?: AbortSignal;
  /**
   * A Hugging Face access token for gated or private repos given by URL: sent as `Authorization: Bearer` to
   * https://huggingface.co only (huggingFaceFetch).
   */
  hfToken?: string;
}

/** A folder/repo URL (Hugging Face repo URLs are resolved to their files), or any ModelFiles. */
export type ModelSource = string | ModelFiles;

export interface GenerateOptions extends SamplingOptions {
  signal?: AbortSignal;
  /** Constrains the output to JSON, a JSON schema, a grammar or a regex (see ResponseFormat). */
  response_format?: ResponseFormat | null;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Prompt tokens whose keys and values came from the cache of the previous request. */
  prompt_tokens_details: { cached_tokens: number };
}

export interface Timings {
  time_to_first_token_ms: number;
  prefill_tokens_per_second: number;
  decode_tokens_per_second: number;
  /** GPU→CPU bytes per generated token: 4 (the token id) when greedy on the GPU, else the logits. */
  readback_bytes_per_token: number;
}

/** A token and its log-probability, in OpenAI's shape: `bytes` are the token's UTF-8 bytes (a piece of a character for some). */
export interface TopLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
}

export interface TokenLogprob extends TopLogprob {
  /** The most probable tokens at this step, best first: `top_logprobs` of them. */
  top_logprobs: TopLogprob[];
}

export interface GenerationDelta {
  /** The tokens this delta covers (usually one). */
  tokenIds: number[];
  /** New text; may be empty while a split UTF-8 character or a possible stop string is held back. */
  text: string;
  /** With `logprobs: true`: one entry per id in tokenIds, from the distribution sampled (after processing). */
  logprobs?: TokenLogprob[];
}

export interface GenerationResult {
  finishReason: FinishReason;
  usage: Usage;
  timings: Timings;
}

/**
 * An async iterable of deltas whose `result` settles when generation ends. Generation runs as the stream is
 * iterated (once); a consumer that stops early frees the engine, and `result` then rejects with AbortError.
 */
export interface GenerationStream extends AsyncIterable<GenerationDelta> {
  readonly result: Promise<GenerationResult>;
}

export interface ChatCompletionMessageParam {
  role: 'system' | 'user' | 'assistant' | 'tool';
  /** null only for an assistant message with tool_calls. */
  content: string | { type: 'text'; text: string }[] | null;
  /** Assistant messages: the calls it made (as a completion returned them). */
  tool_calls?: ToolCall[];
  /** Tool messages: the id of the call whose result this is. */
  tool_call_id?: string;
}

/** Why a chat reply ended: FinishReason, or 'tool_calls' when it is tool calls. */
export type ChatFinishReason = FinishReason | 'tool_calls';

export interface ChatCompletionRequest extends SamplingOptions {
  messages: ChatCompletionMessageParam[];
  stream?: boolean | null;
  /** Accepted and ignored: the engine serves one model. */
  model?: string | null;
  /** OpenAI's newer name for max_tokens. */
  max_completion_tokens?: number | null;
  /** Only 1 is supported. */
  n?: number | null;
  /** Usage is always sent in the last chunk; accepted for compatibility. */
  stream_options?: { include_usage?: boolean } | null;
  /** Also accepted here, besides the second argument as in the OpenAI SDK. */
  signal?: AbortSignal;
  /** Constrained output: JSON, a JSON schema, or our `grammar` / `regex` formats. */
  response_format?: ResponseFormat | null;
  /** Functions the model may call; the model's chat template describes them to it. */
  tools?: Tool[] | null;
  /** 'auto' (default with tools), 'none', 'required' or a named function; the last two are enforced by a grammar. */
  tool_choice?: ToolChoice | null;
  /** Accepted for compatibility; a forced call is one call, an 'auto' reply may hold several. */
  parallel_tool_calls?: boolean | null;
}

/** A choice's log-probabilities, as OpenAI nests them (null unless the request set `logprobs: true`). */
export interface ChoiceLogprobs {
  content: TokenLogprob[];
  refusal: null;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: {
    index: 0;
    /** content is '' (not OpenAI's null) when the reply is only tool calls, so it is always a string to show. */
    message: { role: 'assistant'; content: string; tool_calls?: ToolCall[] };
    finish_reason: ChatFinishReason;
    logprobs: ChoiceLogprobs | null;
  }[];
  usage: Usage;
  timings: Timings;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: {
    index: 0;
    delta: { role?: 'assistant'; content?: string; tool_calls?: ToolCallDelta[] };
    finish_reason: ChatFinishReason | null;
    logprobs: ChoiceLogprobs | null;
  }[];
  /** On the last chunk only. */
  usage?: Usage;
  timings?: Timings;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface ChatCompletions {
  create(request: ChatCompletionRequest & { stream: true }, options?: RequestOptions): Promise<AsyncIterable<ChatCompletionChunk>>;
  create(request: ChatCompletionRequest & { stream?: false | null }, options?: RequestOptions): Promise<ChatCompletion>;
  create(request: ChatCompletionRequest, options?: RequestOptions): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;
}

