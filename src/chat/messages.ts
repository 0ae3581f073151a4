/**
 * Chat messages in the OpenAI shape, and their validation. Requests arrive as untrusted JSON, so
 * validation reads only own properties, copies only the known fields into fresh objects (an incoming
 * "__proto__" or extra field never reaches the template), and names the offending field the way OpenAI's
 * API does (`param: 'messages[2].role'`) so a client can point at it.
 */
import { isJsonObject, ownField } from '../util/json';

export type ChatRole = 'system' | 'user' | 'assistant' | 'tool';

/** A call the assistant made, as OpenAI sends it back in the history (arguments as JSON text). */
export interface ChatToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** A text part of an OpenAI multi-part content array; other part types (images, audio) are not supported. */
export interface ChatTextPart {
  type: 'text';
  text: string;
}

/** A message as a client may send it: content as a string or as a list of text parts. */
export interface ChatMessageInput {
  role: ChatRole;
  /** null only for an assistant message that holds tool_calls. */
  content: string | readonly ChatTextPart[] | null;
  /** Assistant messages: the tools it called. */
  tool_calls?: readonly ChatToolCall[];
  /** Tool messages: the call this result answers. */
  tool_call_id?: string;
}

/** A validated message: what templates see. */
export interface ChatMessage {
  role: ChatRole;
  content: string;
  tool_calls?: ChatToolCall[];
  tool_call_id?: string;
}

/** The request is malformed; maps to an HTTP 400 with OpenAI's `invalid_request_error`. */
export class InvalidRequestError extends Error {
  override readonly name = 'InvalidRequestError';
  readonly type = 'invalid_request_error';
  constructor(
    message: string,
    /** The offending field, e.g. 'messages' or 'messages[2].content[0].text'. */
    readonly param: string,
  ) {
    super(message);
  }
}

const ROLES: readonly ChatRole[] = ['system', 'user', 'assistant', 'tool'];

/**
 * Checks untrusted messages and returns fresh `{ role, content }` copies with content parts joined.
 *
 * - Text parts are joined with "\n", as vLLM does, so adjacent parts do not run into each other.
 * - A user message must not be empty: it would give the model nothing to answer and usually means a client
 *   bug. Empty system and assistant messages are allowed (harmless, and clients send them).
 * - The conversation may end with an assistant message, as OpenAI allows. The template then renders it as
 *   a finished turn; with add_generation_prompt another assistant turn follows. Roles need not alternate
 *   here: templates that require it (Llama-2) raise their own error.
 */
export function validateMessages(messages: unknown): ChatMessage[] {
  if (!Array.isArray(messages)) throw new InvalidRequestError('messages must be an array', 'messages');
  if (messages.length === 0) throw new InvalidRequestError('messages must contain at least one message', 'messages');
  const result: ChatMessage[] = [];
  for (let i = 0; i < messages.length; i++) {
    const param = `messages[${i}]`;
    // Index access (not iteration) so holes in a sparse array are reported, not skipped.
    const message: unknown = messages[i];
    if (!isJsonObject(message)) throw new InvalidRequestError(`${param} must be an object`, param);
    const role = ownField(message, 'role');
    if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) {
      throw new InvalidRequestError(
        `${param}.role must be one of ${ROLES.map((r) => `'${r}'`).join(', ')}; got ${describe(role)}`,
        `${param}.role`,
      );
    }
    const toolCalls = role === 'assistant' ? toolCallsOf(ownField(message, 'tool_calls'), `${param}.tool_calls`) : undefined;
    const rawContent = ownField(message, 'content');
    // Templates read content as a string: a tool-calling assistant turn's null content becomes ''.
    const content = toolCalls && (rawContent === null || rawContent === undefined) ? '' : contentText(rawContent, `${param}.content`);
    if (role === 'user' && content === '') {
      throw new InvalidRequestError(`${param}.content must not be empty`, `${param}.content`);
    }
    const valid: ChatMessage = { role: role as ChatRole, content };
    if (toolCalls) valid.tool_calls = toolCalls;
    if (role === 'tool') {
      const id = ownField(message, 'tool_call_id');
      if (typeof id !== 'string') throw new InvalidRequestError(`${param}.tool_call_id must be a string`, `${param}.tool_call_id`);
      valid.tool_call_id = id;
    }
    result.push(valid);
  }
  return result;
}

/** An assistant message's tool_calls, copied field by field; undefined when absent or empty. */
function toolCallsOf(value: unknown, param: string): ChatToolCall[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw new InvalidRequestError(`${param} must be an array`, param);
  if (value.length === 0) return undefined;
  return value.map((call: unknown, i) => {
    const at = `${param}[${i}]`;
    const fn = isJsonObject(call) ? ownField(call, 'function') : undefined;
    const id = isJsonObject(call) ? ownField(call, 'id') : undefined;
    const name = isJsonObject(fn) ? ownField(fn, 'name') : undefined;
    const args = isJsonObject(fn) ? ownField(fn, 'arguments') : undefined;
    if (typeof id !== 'string' || typeof name !== 'string' || typeof args !== 'string') {
      throw new InvalidRequestError(`${at} must be { id, type: "function", function: { name, arguments } } with strings`, at);
    }
    return { id, type: 'function', function: { name, arguments: args } };
  });
}

function contentText(content: unknown, param: string): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) {
    throw new InvalidRequestError(`${param} must be a string or an array of text parts; got ${describe(content)}`, param);
  }
  const texts: string[] = [];
  for (let j = 0; j < content.length; j++) {
    const part: unknown = content[j];
    const partParam = `${param}[${j}]`;
    if (!isJsonObject(part)) throw new InvalidRequestError(`${partParam} must be an object`, partParam);
    const type = ownField(part, 'type');
    if (type !== 'text') {
      throw new InvalidRequestError(
        `${partParam}.type must be 'text' (only text content is supported); got ${describe(type)}`,
        `${partParam}.type`,
      );
    }
    const text = ownField(part, 'text');
    if (typeof text !== 'string') {
      throw new InvalidRequestError(`${partParam}.text must be a string; got ${describe(text)}`, `${partParam}.text`);
    }
    texts.push(text);
  }
  return texts.join('\n');
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}
