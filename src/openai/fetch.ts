/**
 * `createOpenAIFetch(engine)`: a `fetch` that answers OpenAI's REST routes from a local engine, for the
 * official `openai` client's `fetch` option (`new OpenAI({ fetch: createOpenAIFetch(engine), ... })`).
 * Nothing goes over the network: the request's origin is ignored and the path picks the route:
 * POST …/chat/completions and …/completions (JSON, or SSE with `stream: true`), GET …/models[/id].
 * `serve` (src/node/serve.ts) puts the same function behind an HTTP server.
 */
import type { ChatCompletionChunk, ChatCompletionRequest, ChatCompletions, GenerateOptions, GenerationStream, Usage } from '../engine/types';
import { InvalidOptionError } from '../engine/errors';
import { mapError, openAIError, type MappedError } from './errors';

/** An engine in this thread (Engine) or in a worker (ChatEngine): what the routes need from it. */
export interface OpenAIEngine {
  readonly chat: { completions: ChatCompletions };
  generate(prompt: string | readonly number[], options?: GenerateOptions): GenerationStream;
}

export interface OpenAIFetchOptions {
  /** The `id` listed by /v1/models and returned as `model`; default: the engine's modelId. */
  modelId?: string;
}

export type OpenAIFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** OpenAI's default for /v1/completions, where max_tokens is optional and small. */
const COMPLETION_DEFAULT_MAX_TOKENS = 16;

/** Fields of a completions request that are not sampling options. */
const COMPLETION_FIELDS = new Set(['model', 'prompt', 'stream', 'stream_options', 'n', 'echo', 'user']);

class RouteError extends Error {
  constructor(readonly mapped: MappedError) {
    super(mapped.body.error.message);
  }
}

function engineModelId(engine: OpenAIEngine): string {
  const withId = engine as { modelId?: unknown; info?: { modelId?: unknown } };
  const id = withId.modelId ?? withId.info?.modelId;
  return typeof id === 'string' ? id : 'local';
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/**
 * Server-sent events from `events`, then `data: [DONE]`. An error after the headers went out becomes an
 * `error` event, which the openai client raises as an APIError. Cancelling the body (or `signal`) stops the
 * generation: the iterator's return() frees the engine.
 */
function sse(events: AsyncIterable<unknown>, signal: AbortSignal | undefined): Response {
  const encoder = new TextEncoder();
  const iterator = events[Symbol.asyncIterator]();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      signal?.addEventListener(
        'abort',
        () => {
          controller.error(abortError(signal));
          void iterator.return?.();
        },
        { once: true },
      );
    },
    async pull(controller) {
      try {
        const next = await iterator.next();
        if (signal?.aborted) return;
        if (next.done) {
          controller.enqueue(encoder.encode('data: [DONE]\n\n'));
          controller.close();
        } else controller.enqueue(encoder.encode(`data: ${JSON.stringify(next.value)}\n\n`));
      } catch (e) {
        if (signal?.aborted) return;
        controller.enqueue(encoder.encode(`data: ${JSON.stringify(mapError(e).body)}\n\n`));
        controller.close();
      }
    },
    async cancel() {
      await iterator.return?.();
    },
  });
  return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } });
}

async function readJson(request: Request): Promise<Record<string, unknown>> {
  const text = await request.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new RouteError(openAIError(400, 'invalid_request_error', 'The request body is not valid JSON.'));
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new RouteError(openAIError(400, 'invalid_request_error', 'The request body must be a JSON object.'));
  }
  return body as Record<string, unknown>;
}

/** A completions prompt as the engine takes it: text, or token ids; OpenAI's batch forms only with one prompt. */
function completionPrompt(prompt: unknown): string | number[] {
  const one = Array.isArray(prompt) && prompt.length === 1 && (typeof prompt[0] === 'string' || Array.isArray(prompt[0])) ? prompt[0] : prompt;
  if (typeof one === 'string') return one;
  if (Array.isArray(one) && one.length > 0 && one.every((id) => Number.isInteger(id))) return one as number[];
  throw new InvalidOptionError('prompt', 'a string, an array of token ids, or an array holding one of those (one prompt per request)', prompt);
}

let counter = 0;
function completionId(): string {
  counter = (counter + 1) % 1e9;
  return `cmpl-${Date.now().toString(36)}${counter.toString(36)}`;
}

interface TextCompletionChoice {
  index: 0;
  text: string;
  logprobs: null;
  finish_reason: string | null;
}

async function completions(engine: OpenAIEngine, model: string, body: Record<string, unknown>, signal: AbortSignal | undefined): Promise<Response> {
  const sampling: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    if (value === undefined || value === null) continue;
    if (key === 'n' && value !== 1) throw new InvalidOptionError('n', '1 (one choice per request)', value);
    if (key === 'echo' && value !== false) throw new InvalidOptionError('echo', 'false', value);
    if (key === 'stream' && typeof value !== 'boolean') throw new InvalidOptionError('stream', 'a boolean', value);
    if (!COMPLETION_FIELDS.has(key)) sampling[key] = value;
  }
  const prompt = completionPrompt(body.prompt);
  const generation = engine.generate(prompt, { max_tokens: COMPLETION_DEFAULT_MAX_TOKENS, ...sampling, signal });
  const id = completionId();
  const created = Math.floor(Date.now() / 1000);
  const envelope = (choice: TextCompletionChoice, usage?: Usage) => ({ id, object: 'text_completion', created, model, choices: [choice], ...(usage && { usage }) });

  if (body.stream === true) {
    const chunks = async function* () {
      for await (const delta of generation) {
        if (delta.text) yield envelope({ index: 0, text: delta.text, logprobs: null, finish_reason: null });
      }
      const { finishReason, usage } = await generation.result;
      yield envelope({ index: 0, text: '', logprobs: null, finish_reason: finishReason }, usage);
    };
    return sse(chunks(), signal);
  }
  let text = '';
  for await (const delta of generation) text += delta.text;
  const { finishReason, usage } = await generation.result;
  if (signal?.aborted) throw abortError(signal);
  return json(200, envelope({ index: 0, text, logprobs: null, finish_reason: finishReason }, usage));
}

async function chatCompletions(engine: OpenAIEngine, model: string, body: Record<string, unknown>, signal: AbortSignal | undefined): Promise<Response> {
  // The request's `model` is whatever the caller named; the answers carry the id this fetch serves.
  // create() validates every field and rejects unknown ones, so the body goes in as it came.
  const request = body as unknown as ChatCompletionRequest;
  if (request.stream === true) {
    const chunks = await engine.chat.completions.create({ ...request, stream: true }, { signal });
    const renamed = async function* () {
      for await (const chunk of chunks as AsyncIterable<ChatCompletionChunk>) yield { ...chunk, model };
    };
    return sse(renamed(), signal);
  }
  const completion = await engine.chat.completions.create({ ...request, stream: false }, { signal });
  if (signal?.aborted) throw abortError(signal);
  return json(200, { ...completion, model });
}

function modelObject(id: string) {
  return { id, object: 'model', created: 0, owned_by: 'local' };
}

/** The fetch function for `new OpenAI({ fetch })`; also usable directly with Request objects. */
export function createOpenAIFetch(engine: OpenAIEngine, options: OpenAIFetchOptions = {}): OpenAIFetch {
  const model = options.modelId ?? engineModelId(engine);
  return async (input, init) => {
    const request = new Request(input, init);
    // The caller's own signal: Request wraps it in one that cannot be compared, but aborts alike.
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined) ?? undefined;
    signal?.throwIfAborted();
    const path = new URL(request.url).pathname.replace(/\/+$/, '');
    const route = /(?:^|\/)(chat\/completions|completions|models)(?:\/([^/]+))?$/.exec(path);
    try {
      if (!route || (route[2] !== undefined && route[1] !== 'models')) {
        throw new RouteError(openAIError(404, 'invalid_request_error', `Unknown route ${request.method} ${path}: this server has POST /v1/chat/completions, POST /v1/completions and GET /v1/models.`, null, 'unknown_url'));
      }
      const method = route[1] === 'models' ? 'GET' : 'POST';
      if (request.method !== method) {
        throw new RouteError(openAIError(405, 'invalid_request_error', `${path} takes ${method}, not ${request.method}.`, null, 'method_not_allowed'));
      }
      if (route[1] === 'models') {
        if (route[2] === undefined) return json(200, { object: 'list', data: [modelObject(model)] });
        const wanted = decodeURIComponent(route[2]);
        if (wanted !== model) throw new RouteError(openAIError(404, 'invalid_request_error', `The model '${wanted}' does not exist; this engine serves '${model}'.`, 'model', 'model_not_found'));
        return json(200, modelObject(model));
      }
      const body = await readJson(request);
      return route[1] === 'chat/completions' ? await chatCompletions(engine, model, body, signal) : await completions(engine, model, body, signal);
    } catch (e) {
      if (signal?.aborted) throw abortError(signal);
      const mapped = e instanceof RouteError ? e.mapped : mapError(e);
      return json(mapped.status, mapped.body);
    }
  };
}
