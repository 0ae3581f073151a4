/**
 * Tool calling in OpenAI's shape: `tools` and `tool_choice` validated from untrusted JSON, the model family's
 * tool-call syntax (Hermes/Qwen `<tool_call>` JSON blocks, Llama 3.1 JSON `{"name", "parameters"}`, Mistral
 * `[TOOL_CALLS]` JSON list), the grammar that forces a call for `required` or a named function, and the parser
 * that turns a reply into `tool_calls`.
 */
import { isJsonObject, ownField, type JsonObject } from '../util/json';
import { schemaText, type GrammarSpec } from '../structured/response-format';
import { InvalidRequestError } from './messages';

export interface ToolFunction {
  name: string;
  description?: string;
  parameters?: JsonObject;
}

/** A tool as the template sees it: `{ type: 'function', function }`. */
export interface Tool {
  type: 'function';
  function: ToolFunction;
}

export type ToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } };

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** A streamed piece of a tool call: OpenAI sends index, id, type and name first; here each call comes whole. */
export interface ToolCallDelta extends ToolCall {
  index: number;
}

export const MAX_TOOLS = 128;
const NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function parseTools(value: unknown): Tool[] {
  if (!Array.isArray(value)) throw new InvalidRequestError('tools must be an array of function tools', 'tools');
  if (value.length > MAX_TOOLS) throw new InvalidRequestError(`tools must hold at most ${MAX_TOOLS} tools`, 'tools');
  const names = new Set<string>();
  return value.map((tool: unknown, i) => {
    const param = `tools[${i}]`;
    if (!isJsonObject(tool) || ownField(tool, 'type') !== 'function') throw new InvalidRequestError(`${param} must be { type: "function", function }`, param);
    const fn = ownField(tool, 'function');
    if (!isJsonObject(fn)) throw new InvalidRequestError(`${param}.function must be an object`, `${param}.function`);
    const name = ownField(fn, 'name');
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new InvalidRequestError(`${param}.function.name must be 1 to 64 letters, digits, underscores or dashes`, `${param}.function.name`);
    }
    if (names.has(name)) throw new InvalidRequestError(`${param}.function.name "${name}" is given twice`, `${param}.function.name`);
    names.add(name);
    const out: ToolFunction = { name };
    const description = ownField(fn, 'description');
    if (description !== undefined && description !== null) {
      if (typeof description !== 'string') throw new InvalidRequestError(`${param}.function.description must be a string`, `${param}.function.description`);
      out.description = description;
    }
    const parameters = ownField(fn, 'parameters');
    if (parameters !== undefined && parameters !== null) {
      if (!isJsonObject(parameters)) throw new InvalidRequestError(`${param}.function.parameters must be a JSON schema object`, `${param}.function.parameters`);
      out.parameters = parameters;
    }
    return { type: 'function', function: out };
  });
}

export function parseToolChoice(value: unknown, tools: readonly Tool[]): ToolChoice {
  if (value === undefined || value === null) return tools.length > 0 ? 'auto' : 'none';
  if (value === 'none' || value === 'auto' || value === 'required') {
    if (value !== 'none' && tools.length === 0) throw new InvalidRequestError(`tool_choice "${value}" needs tools`, 'tool_choice');
    return value;
  }
  const fn = isJsonObject(value) && ownField(value, 'type') === 'function' ? ownField(value, 'function') : undefined;
  const name = isJsonObject(fn) ? ownField(fn, 'name') : undefined;
  if (typeof name !== 'string') {
    throw new InvalidRequestError('tool_choice must be "none", "auto", "required" or { type: "function", function: { name } }', 'tool_choice');
  }
  if (!tools.some((t) => t.function.name === name)) throw new InvalidRequestError(`tool_choice names "${name}", which is not in tools`, 'tool_choice');
  return { type: 'function', function: { name } };
}

/** How a model family writes tool calls. */
export interface ToolSyntax {
  family: 'hermes' | 'llama3' | 'mistral';
  /** Text that opens the tool calls ('' for Llama 3.1, whose calls are a reply that is one JSON object). */
  begin: string;
  /** Text after each call (Hermes closes its blocks). */
  end: string;
  /** The key of the arguments object. */
  argumentsKey: 'arguments' | 'parameters';
}

export const TOOL_SYNTAXES: Record<ToolSyntax['family'], ToolSyntax> = {
  hermes: { family: 'hermes', begin: '<tool_call>\n', end: '\n</tool_call>', argumentsKey: 'arguments' },
  llama3: { family: 'llama3', begin: '', end: '', argumentsKey: 'parameters' },
  mistral: { family: 'mistral', begin: '[TOOL_CALLS]', end: '', argumentsKey: 'arguments' },
};

/**
 * The family from the chat template's text and the vocabulary: Mistral's [TOOL_CALLS] token, Llama 3.1's
 * <|python_tag|> / ipython role, else Hermes (Qwen, Hermes, and the ChatML fallback, which has no tool syntax
 * of its own and gets the Qwen convention).
 */
export function toolSyntaxFor(template: string, hasToken: (token: string) => boolean): ToolSyntax {
  if (hasToken('[TOOL_CALLS]') || template.includes('[TOOL_CALLS]')) return TOOL_SYNTAXES.mistral;
  if (!template.includes('<tool_call>') && (hasToken('<|python_tag|>') || template.includes('ipython'))) return TOOL_SYNTAXES.llama3;
  return TOOL_SYNTAXES.hermes;
}

/** The JSON schema of one call of `tool` in `syntax`: the name fixed, the arguments its parameters. */
function callSchema(tool: Tool, syntax: ToolSyntax): JsonObject {
  return {
    type: 'object',
    properties: { name: { const: tool.function.name }, [syntax.argumentsKey]: tool.function.parameters ?? { type: 'object' } },
    required: ['name', syntax.argumentsKey],
    additionalProperties: false,
  };
}

/**
 * The grammar that forces exactly one call: of the named function, or (for `required`) of any tool. Its
 * arguments then always parse and validate against the function's parameters.
 */
export function forcedToolCall(tools: readonly Tool[], choice: ToolChoice, syntax: ToolSyntax): GrammarSpec {
  const chosen = typeof choice === 'object' ? tools.filter((t) => t.function.name === choice.function.name) : tools;
  const schemas = chosen.map((t) => callSchema(t, syntax));
  const one = schemas.length === 1 ? schemas[0] : { anyOf: schemas };
  const schema = syntax.family === 'mistral' ? { type: 'array', items: one, minItems: 1, maxItems: 1 } : one;
  return { kind: 'tagged_json', begin: syntax.begin, schema: schemaText(schema, 'tools'), end: syntax.end };
}

let callCounter = 0;
function callId(): string {
  callCounter = (callCounter + 1) % 1e9;
  return `call_${Date.now().toString(36)}${callCounter.toString(36)}`;
}

/** One parsed call object: { name, arguments | parameters }; null when it is not one. */
function toCall(value: unknown, syntax: ToolSyntax): ToolCall | null {
  if (!isJsonObject(value) || typeof value.name !== 'string') return null;
  const args = ownField(value, syntax.argumentsKey) ?? ownField(value, 'arguments') ?? {};
  return { id: callId(), type: 'function', function: { name: value.name, arguments: typeof args === 'string' ? args : JSON.stringify(args) } };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The tool calls in a finished reply (`text` from where the tool syntax begins), or null when it holds
 * none that parse (the reply is then plain content).
 */
export function parseToolCalls(text: string, syntax: ToolSyntax): ToolCall[] | null {
  const trimmed = text.trim();
  let calls: (ToolCall | null)[];
  if (syntax.family === 'hermes') {
    const blocks = [...trimmed.matchAll(/<tool_call>([\s\S]*?)(?:<\/tool_call>|$)/g)].map((m) => m[1].trim());
    calls = blocks.map((b) => toCall(parseJson(b), syntax));
  } else {
    const value = parseJson(syntax.family === 'mistral' ? trimmed.replace(/^\[TOOL_CALLS\]/, '') : trimmed);
    calls = (Array.isArray(value) ? value : [value]).map((v) => toCall(v, syntax));
  }
  return calls.length > 0 && calls.every((c) => c !== null) ? (calls as ToolCall[]) : null;
}

/**
 * Splits streamed text into content that can go out now and a tail held back from where tool calls may
 * begin: the begin marker (or its first characters at the end of the text so far), or for Llama 3.1 a reply
 * whose first non-space character is `{`.
 */
export class ToolCallSplitter {
  private text = '';
  private sent = 0;
  /** Where the tool-call text starts, once seen. */
  private start = -1;

  constructor(private readonly syntax: ToolSyntax) {}

  /** Adds generated text; returns the content that is certainly not part of a tool call. */
  push(text: string): string {
    this.text += text;
    if (this.start >= 0) return '';
    const marker = this.syntax.family === 'llama3' ? '{' : this.syntax.begin.trim();
    if (this.syntax.family === 'llama3') {
      const first = this.text.search(/\S/);
      if (first < 0) return '';
      if (this.text[first] === marker) {
        this.start = first;
        return '';
      }
      return this.flushContent(this.text.length);
    }
    const at = this.text.indexOf(marker, this.sent);
    if (at >= 0) {
      this.start = at;
      return this.flushContent(at);
    }
    // Hold back a tail that could be the marker's beginning.
    let hold = 0;
    for (let n = Math.min(marker.length - 1, this.text.length); n > 0; n--) {
      if (this.text.endsWith(marker.slice(0, n))) {
        hold = n;
        break;
      }
    }
    return this.flushContent(this.text.length - hold);
  }

  private flushContent(until: number): string {
    const out = this.text.slice(this.sent, until);
    this.sent = Math.max(this.sent, until);
    return out;
  }

  /** At the end: the tool calls, or null with the held-back text as `rest` (plain content after all). */
  finish(): { calls: ToolCall[] | null; rest: string } {
    if (this.start < 0) return { calls: null, rest: this.flushContent(this.text.length) };
    const calls = parseToolCalls(this.text.slice(this.start), this.syntax);
    return calls ? { calls, rest: '' } : { calls: null, rest: this.flushContent(this.text.length) };
  }
}
