/**
 * Chat messages in the OpenAI shape, and their validation. Requests arrive as untrusted JSON, so
 * validation reads only own properties, copies only the known fields into fresh objects (an incoming
 * "__proto__" or extra field never reaches the template), and names the offending field the way OpenAI's
 * API does (`param: 'messages[2].role'`) so a client can point at it.
 */
import { isJsonObject, ownField } from '../util/json';

export type ChatRole = 'system' | 'user' | 'assistant';

/** A text part of an OpenAI multi-part content array; other part types (images, audio) are not supported. */
export interface ChatTextPart {
  type: 'text';
  text: string;
}

/** A message as a client may send it: content as a string or as a list of text parts. */
export interface ChatMessageInput {
  role: ChatRole;
  content: string | readonly ChatTextPart[];
}

/** A validated message: what templates see. */
export interface ChatMessage {
  role: ChatRole;
  content: string;
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

const ROLES: readonly ChatRole[] = ['system', 'user', 'assistant'];

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
    const content = contentText(ownField(message, 'content'), `${param}.content`);
    if (role === 'user' && content === '') {
      throw new InvalidRequestError(`${param}.content must not be empty`, `${param}.content`);
    }
    result.push({ role: role as ChatRole, content });
  }
  return result;
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
