/**
 * `engine.chat.completions.create()`, shaped like OpenAI's: a ChatCompletion, or with `stream: true` an
 * async iterable of ChatCompletionChunk whose last chunk carries `finish_reason` and `usage`. `timings`
 * is our extension (time to first token, prefill and decode speed, bytes read back per token).
 */
import { InvalidOptionError, SAMPLING_OPTION_NAMES, type ResolvedSamplingOptions } from '../sampling/options';
import { parseResponseFormat, type ConstrainedOutput } from '../structured/response-format';
import { InvalidRequestError } from './errors';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletions,
  ChoiceLogprobs,
  FinishReason,
  GenerateOptions,
  GenerationStream,
  RequestOptions,
  TokenLogprob,
} from './types';

/** What chat completions need from an engine: the chat encoding, option resolution and the streaming core. */
export interface ChatBackend {
  /** The `model` field of completions. */
  readonly modelId: string;
  /** Renders and tokenizes in pieces; `signal` aborts a long encoding. */
  encodeMessages(messages: unknown, signal?: AbortSignal): Promise<number[]>;
  resolveOptions(options: Omit<GenerateOptions, 'signal'>): ResolvedSamplingOptions;
  chatEosTokenIds(): number[];
  /** Compiles a grammar ahead of the request (InvalidRequestError for a schema the engine cannot compile). */
  prepareGrammar(grammar: ConstrainedOutput): Promise<void>;
  stream(promptIds: number[], opts: ResolvedSamplingOptions, eosTokenIds: readonly number[], signal?: AbortSignal, grammar?: ConstrainedOutput): GenerationStream;
}

const REQUEST_FIELDS = new Set<string>([
  'messages',
  'stream',
  'model',
  'max_completion_tokens',
  'n',
  'stream_options',
  'signal',
  'response_format',
  ...SAMPLING_OPTION_NAMES,
]);

interface ParsedRequest {
  messages: unknown;
  stream: boolean;
  sampling: Record<string, unknown>;
  signal?: AbortSignal;
  grammar?: ConstrainedOutput;
}

/** Splits a request into the conversation, the sampling options and the flags, rejecting anything unknown. */
function parseRequest(request: unknown): ParsedRequest {
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    throw new InvalidRequestError('the request must be an object with messages', 'request');
  }
  const sampling: Record<string, unknown> = {};
  let messages: unknown;
  let stream = false;
  let signal: AbortSignal | undefined;
  let grammar: ConstrainedOutput | undefined;
  for (const [key, value] of Object.entries(request)) {
    if (!REQUEST_FIELDS.has(key)) throw new InvalidOptionError(key, `a known request field: ${[...REQUEST_FIELDS].join(', ')}`, value);
    if (value === undefined || value === null) continue;
    if (key === 'messages') messages = value;
    else if (key === 'stream') {
      if (typeof value !== 'boolean') throw new InvalidOptionError('stream', 'a boolean', value);
      stream = value;
    } else if (key === 'signal') {
      if (!(value instanceof AbortSignal)) throw new InvalidOptionError('signal', 'an AbortSignal', value);
      signal = value;
    } else if (key === 'n') {
      if (value !== 1) throw new InvalidOptionError('n', '1 (one choice per request)', value);
    } else if (key === 'response_format') {
      const spec = parseResponseFormat(value);
      if (spec) grammar = { spec, param: 'response_format' };
    } else if (key === 'max_completion_tokens') sampling.max_tokens = value;
    else if (key !== 'model' && key !== 'stream_options') sampling[key] = value;
  }
  if (messages === undefined) throw new InvalidRequestError('messages is required', 'messages');
  return { messages, stream, sampling, signal, grammar };
}

let counter = 0;
function completionId(): string {
  counter = (counter + 1) % 1e9;
  return `chatcmpl-${Date.now().toString(36)}${counter.toString(36)}`;
}

export function createChatCompletions(engine: ChatBackend): ChatCompletions {
  function create(request: ChatCompletionRequest & { stream: true }, options?: RequestOptions): Promise<AsyncIterable<ChatCompletionChunk>>;
  function create(request: ChatCompletionRequest & { stream?: false | null }, options?: RequestOptions): Promise<ChatCompletion>;
  function create(request: ChatCompletionRequest, options?: RequestOptions): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;
  async function create(request: ChatCompletionRequest, options: RequestOptions = {}): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
    const parsed = parseRequest(request);
    const opts = engine.resolveOptions(parsed.sampling);
    if (parsed.stream && opts.numBeams > 1) {
      throw new InvalidOptionError('num_beams', '1 when streaming (beam search returns the whole reply at once)', opts.numBeams);
    }
    const signal = options.signal ?? parsed.signal;
    const ids = await engine.encodeMessages(parsed.messages, signal);
    if (parsed.grammar) await engine.prepareGrammar(parsed.grammar);
    const generation = engine.stream(ids, opts, engine.chatEosTokenIds(), signal, parsed.grammar);
    const id = completionId();
    const created = Math.floor(Date.now() / 1000);
    return parsed.stream ? chunks(generation, id, created, engine.modelId) : collect(generation, id, created, engine.modelId, opts.logprobs);
  }
  return { create };
}

/** The choice's logprobs field: null unless the request asked for them. */
const choiceLogprobs = (wanted: boolean, content: TokenLogprob[]): ChoiceLogprobs | null => (wanted ? { content, refusal: null } : null);

async function collect(generation: GenerationStream, id: string, created: number, model: string, wantLogprobs: boolean): Promise<ChatCompletion> {
  let content = '';
  const logprobs: TokenLogprob[] = [];
  for await (const delta of generation) {
    content += delta.text;
    if (delta.logprobs) logprobs.push(...delta.logprobs);
  }
  const { finishReason, usage, timings } = await generation.result;
  return {
    id,
    object: 'chat.completion',
    created,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: finishReason, logprobs: choiceLogprobs(wantLogprobs, logprobs) }],
    usage,
    timings,
  };
}

async function* chunks(generation: GenerationStream, id: string, created: number, model: string): AsyncGenerator<ChatCompletionChunk> {
  const chunk = (delta: ChatCompletionChunk['choices'][0]['delta'], finish: FinishReason | null, logprobs: ChoiceLogprobs | null = null): ChatCompletionChunk => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [{ index: 0, delta, finish_reason: finish, logprobs }],
  });
  yield chunk({ role: 'assistant', content: '' }, null);
  // A token whose text is held back (half a character, a possible stop string) still sends its logprobs.
  for await (const delta of generation) {
    if (delta.text || delta.logprobs) yield chunk({ content: delta.text }, null, delta.logprobs ? choiceLogprobs(true, delta.logprobs) : null);
  }
  const { finishReason, usage, timings } = await generation.result;
  yield { ...chunk({}, finishReason), usage, timings };
}
