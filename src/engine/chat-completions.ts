/**
 * `engine.chat.completions.create()`, shaped like OpenAI's: a ChatCompletion, or with `stream: true` an
 * async iterable of ChatCompletionChunk whose last chunk carries `finish_reason` and `usage`. `timings`
 * is our extension (time to first token, prefill and decode speed, bytes read back per token).
 */
import { InvalidOptionError, SAMPLING_OPTION_NAMES, type ResolvedSamplingOptions } from '../sampling/options';
import { parseResponseFormat, type ConstrainedOutput } from '../structured/response-format';
import { forcedToolCall, parseToolChoice, parseTools, ToolCallSplitter, type Tool, type ToolCall, type ToolSyntax } from '../chat/tools';
import type { Tokenizer } from '../tokenizer/tokenizer';
import { InvalidRequestError } from './errors';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletions,
  ChatFinishReason,
  ChoiceLogprobs,
  FinishReason,
  GenerateOptions,
  GenerationDelta,
  GenerationStream,
  RequestOptions,
  TokenLogprob,
} from './types';

/** What chat completions need from an engine: the chat encoding, option resolution and the streaming core. */
export interface ChatBackend {
  /** The `model` field of completions. */
  readonly modelId: string;
  /** Renders (tools included) and tokenizes in pieces; `signal` aborts a long encoding. */
  encodeMessages(messages: unknown, signal?: AbortSignal, tools?: readonly Tool[]): Promise<number[]>;
  /** How the model writes tool calls. */
  readonly toolSyntax: ToolSyntax;
  readonly tokenizer: Pick<Tokenizer, 'tokenToId' | 'specialTokenIds'>;
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
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  ...SAMPLING_OPTION_NAMES,
]);

interface ParsedRequest {
  messages: unknown;
  stream: boolean;
  sampling: Record<string, unknown>;
  signal?: AbortSignal;
  grammar?: ConstrainedOutput;
  tools: Tool[];
  toolChoice: unknown;
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
  let tools: Tool[] = [];
  let toolChoice: unknown;
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
    } else if (key === 'tools') tools = parseTools(value);
    else if (key === 'tool_choice') toolChoice = value;
    else if (key === 'parallel_tool_calls') {
      if (typeof value !== 'boolean') throw new InvalidOptionError('parallel_tool_calls', 'a boolean', value);
    } else if (key === 'max_completion_tokens') sampling.max_tokens = value;
    else if (key !== 'model' && key !== 'stream_options') sampling[key] = value;
  }
  if (messages === undefined) throw new InvalidRequestError('messages is required', 'messages');
  return { messages, stream, sampling, signal, grammar, tools, toolChoice };
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
    const choice = parseToolChoice(parsed.toolChoice, parsed.tools);
    const syntax = engine.toolSyntax;
    let grammar = parsed.grammar;
    if (choice === 'required' || typeof choice === 'object') {
      if (grammar) throw new InvalidRequestError('response_format cannot be combined with a forced tool_choice', 'response_format');
      grammar = { spec: forcedToolCall(parsed.tools, choice, syntax), param: 'tool_choice' };
    }
    // With tool_choice "none" the tools are left out of the prompt, so the model is not told it could call one.
    const tools = choice === 'none' ? undefined : parsed.tools;
    const ids = await engine.encodeMessages(parsed.messages, signal, tools);
    if (grammar) await engine.prepareGrammar(grammar);
    const generation = engine.stream(ids, opts, engine.chatEosTokenIds(), signal, grammar);
    const reply: Reply = { generation, id: completionId(), created: Math.floor(Date.now() / 1000), model: engine.modelId, splitter: null, markerToken: null };
    if (tools) {
      reply.splitter = new ToolCallSplitter(syntax);
      // A marker that is a special token (Mistral's [TOOL_CALLS]) never reaches the text: it is spotted by id.
      const marker = syntax.begin.trim();
      const markerId = marker ? engine.tokenizer.tokenToId(marker) : undefined;
      if (markerId !== undefined && engine.tokenizer.specialTokenIds.has(markerId)) reply.markerToken = { id: markerId, text: marker };
    }
    return parsed.stream ? chunks(reply) : collect(reply, opts.logprobs);
  }
  return { create };
}

/** The choice's logprobs field: null unless the request asked for them. */
const choiceLogprobs = (wanted: boolean, content: TokenLogprob[]): ChoiceLogprobs | null => (wanted ? { content, refusal: null } : null);

/** A generation on its way to becoming a chat reply. */
interface Reply {
  generation: GenerationStream;
  id: string;
  created: number;
  model: string;
  /** Present when tools are offered: holds back text that may be a tool call. */
  splitter: ToolCallSplitter | null;
  markerToken: { id: number; text: string } | null;
}

/** A delta's content once tool-call text is held back. */
function contentOf(reply: Reply, delta: GenerationDelta): string {
  if (!reply.splitter) return delta.text;
  const marker = reply.markerToken && delta.tokenIds.includes(reply.markerToken.id) ? reply.markerToken.text : '';
  return reply.splitter.push(marker + delta.text);
}

/** 'tool_calls' when a reply that ended by itself holds tool calls. */
const chatFinish = (finish: FinishReason, calls: ToolCall[] | null): ChatFinishReason => (calls && finish === 'stop' ? 'tool_calls' : finish);

async function collect(reply: Reply, wantLogprobs: boolean): Promise<ChatCompletion> {
  const { generation } = reply;
  let content = '';
  const logprobs: TokenLogprob[] = [];
  for await (const delta of generation) {
    content += contentOf(reply, delta);
    if (delta.logprobs) logprobs.push(...delta.logprobs);
  }
  const { finishReason, usage, timings } = await generation.result;
  const tail = reply.splitter?.finish() ?? { calls: null, rest: '' };
  content += tail.rest;
  const message: ChatCompletion['choices'][0]['message'] = { role: 'assistant', content };
  if (tail.calls) message.tool_calls = tail.calls;
  return {
    id: reply.id,
    object: 'chat.completion',
    created: reply.created,
    model: reply.model,
    choices: [{ index: 0, message, finish_reason: chatFinish(finishReason, tail.calls), logprobs: choiceLogprobs(wantLogprobs, logprobs) }],
    usage,
    timings,
  };
}

async function* chunks(reply: Reply): AsyncGenerator<ChatCompletionChunk> {
  const { generation } = reply;
  const chunk = (delta: ChatCompletionChunk['choices'][0]['delta'], finish: ChatFinishReason | null, logprobs: ChoiceLogprobs | null = null): ChatCompletionChunk => ({
    id: reply.id,
    object: 'chat.completion.chunk',
    created: reply.created,
    model: reply.model,
    choices: [{ index: 0, delta, finish_reason: finish, logprobs }],
  });
  yield chunk({ role: 'assistant', content: '' }, null);
  // A token whose text is held back (half a character, a possible stop string) still sends its logprobs.
  for await (const delta of generation) {
    const content = contentOf(reply, delta);
    if (content || delta.logprobs) yield chunk({ content }, null, delta.logprobs ? choiceLogprobs(true, delta.logprobs) : null);
  }
  const { finishReason, usage, timings } = await generation.result;
  const tail = reply.splitter?.finish() ?? { calls: null, rest: '' };
  if (tail.rest) yield chunk({ content: tail.rest }, null);
  if (tail.calls) yield chunk({ tool_calls: tail.calls.map((call, index) => ({ index, ...call })) }, null);
  yield { ...chunk({}, chatFinish(finishReason, tail.calls)), usage, timings };
}
