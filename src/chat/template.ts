/**
 * Chat templates: turns messages into the prompt text a model was trained on, with the Jinja
 * `chat_template` from tokenizer_config.json rendered by @huggingface/jinja (the engine transformers.js
 * uses), and encodes it without doubling the BOS token.
 *
 * Models without a chat template (base models such as stories260K) get a documented fallback, see
 * CHATML_FALLBACK_TEMPLATE and TRANSCRIPT_FALLBACK_TEMPLATE; `templateSource` / `fallback` tell the UI
 * which one is in use, because a base model "chatting" through a fallback behaves very differently.
 */
import { Template } from '@huggingface/jinja';
import { DEFAULT_RENDER_LIMITS, renderBounded } from './bounded-render';
import type { Tokenizer } from '../tokenizer/tokenizer';
import { validateMessages, type ChatMessage, type ChatMessageInput } from './messages';
import { isJsonObject, type JsonObject } from '../util/json';

export { InvalidRequestError, validateMessages } from './messages';
export type { ChatMessage, ChatMessageInput, ChatRole, ChatTextPart } from './messages';

/** The chat template is malformed, or it refused the conversation (`raise_exception` in the template). */
export class ChatTemplateError extends Error {
  override readonly name = 'ChatTemplateError';
  constructor(
    message: string,
    /** Which template: 'default', a named entry of a list-form chat_template, or a fallback's name. */
    readonly templateName: string,
    /** The Jinja engine's own message (for raise_exception, exactly the template's text); null for config problems. */
    readonly jinjaMessage: string | null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Fallback for tokenizers that have `<|im_start|>` and `<|im_end|>` but no chat template: ChatML, the format
 * such vocabularies (Qwen, SmolLM, many fine-tunes) were made for. No default system prompt is added.
 */
export const CHATML_FALLBACK_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/**
 * Fallback for everything else (base models): a plain transcript a text model can continue.
 *   - a system message at the start: its text, then a blank line;
 *   - a later system message: "System: <text>\n";
 *   - user and assistant turns: "User: <text>\n" and "Assistant: <text>\n";
 *   - add_generation_prompt: a final "Assistant:" with no trailing space, because SentencePiece and BPE
 *     vocabularies attach the space to the next word (" Hello"), and a lone space token derails generation.
 * The BOS token is not part of the text: encodeChat adds it when the tokenizer is configured to.
 */
export const TRANSCRIPT_FALLBACK_TEMPLATE =
  "{% for message in messages %}{% if message.role == 'system' %}" +
  "{% if loop.first %}{{ message.content + '\\n\\n' }}{% else %}{{ 'System: ' + message.content + '\\n' }}{% endif %}" +
  "{% elif message.role == 'user' %}{{ 'User: ' + message.content + '\\n' }}" +
  "{% else %}{{ 'Assistant: ' + message.content + '\\n' }}{% endif %}{% endfor %}" +
  "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";

export type ChatFallback = 'chatml' | 'transcript';

export interface RenderOptions {
  /** End with the header of an assistant turn so the model answers (default true). */
  addGenerationPrompt?: boolean;
  /** Function definitions passed to the template as `tools` (OpenAI's shape), for templates that describe them. */
  tools?: readonly JsonObject[];
  /** The longest output accepted (default 16 Mi characters); the engine passes what its context can hold. */
  maxChars?: number;
}

export interface ChatFormatter {
  /** Validates the messages (throws InvalidRequestError) and renders them (throws ChatTemplateError). */
  render(messages: readonly ChatMessageInput[], options?: RenderOptions): string;
  /** True when the model ships a chat template; false when a fallback is used. */
  readonly hasTemplate: boolean;
  readonly templateSource: 'tokenizer_config' | 'fallback';
  /** Which fallback is used, or null when the model's own template is. */
  readonly fallback: ChatFallback | null;
  /** 'default' or the chosen entry of a list-form chat_template; 'chatml-fallback' or 'transcript-fallback'. */
  readonly templateName: string;
  /** The Jinja source in use (the model's or the fallback's): tells which tool-call syntax the model was taught. */
  readonly templateText: string;
}

/** What the formatter needs from the tokenizer: the fallback choice, and BOS/EOS when the config omits them. */
export type ChatTokenizer = Pick<Tokenizer, 'tokenToId' | 'idToToken' | 'bosTokenId' | 'eosTokenIds'>;

/**
 * The special-token variables transformers passes to templates (its `special_tokens_map`); templates use
 * bos_token and eos_token most, a few use others.
 */
const SPECIAL_TOKEN_FIELDS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'];

/**
 * @param tokenizerConfig tokenizer_config.json, parsed or as text; undefined or null when the model has none.
 */
export function createChatFormatter(tokenizerConfig: unknown, tokenizer: ChatTokenizer): ChatFormatter {
  const config = parseConfig(tokenizerConfig);
  const chosen = chooseTemplate(config.chat_template);
  let fallback: ChatFallback | null = null;
  let name: string;
  let source: string;
  if (chosen !== null) {
    ({ name, source } = chosen);
  } else {
    fallback =
      tokenizer.tokenToId('<|im_start|>') !== undefined && tokenizer.tokenToId('<|im_end|>') !== undefined
        ? 'chatml'
        : 'transcript';
    name = `${fallback}-fallback`;
    source = fallback === 'chatml' ? CHATML_FALLBACK_TEMPLATE : TRANSCRIPT_FALLBACK_TEMPLATE;
  }

  let template: Template;
  try {
    template = new Template(source);
  } catch (e) {
    const detail = errorMessage(e);
    throw new ChatTemplateError(`chat template "${name}" does not compile: ${detail}`, name, detail, { cause: e });
  }
  const specials = specialTokens(config, tokenizer);

  return {
    hasTemplate: chosen !== null,
    templateSource: chosen !== null ? 'tokenizer_config' : 'fallback',
    fallback,
    templateName: name,
    templateText: source,
    render(messages, options = {}) {
      const valid: ChatMessage[] = validateMessages(messages);
      try {
        const items: Record<string, unknown> = { ...specials, messages: valid, add_generation_prompt: options.addGenerationPrompt ?? true };
        if (options.tools) items.tools = options.tools;
        return renderBounded(template, items, { ...DEFAULT_RENDER_LIMITS, maxChars: options.maxChars ?? DEFAULT_RENDER_LIMITS.maxChars });
      } catch (e) {
        const detail = errorMessage(e);
        throw new ChatTemplateError(`chat template "${name}" failed: ${detail}`, name, detail, { cause: e });
      }
    },
  };
}

/**
 * Renders and encodes a conversation with exactly one BOS where the model expects one. Many templates write
 * `{{ bos_token }}` themselves; encoding that text with the tokenizer's special tokens would put a second
 * BOS in front. So: rendered text that starts with the BOS token → encoded as is; otherwise → the tokenizer's
 * default prefix (BOS when add_bos_token or the post-processor asks for it) in front. A default suffix (an
 * EOS from add_eos_token) is never appended: it would tell the model the conversation is over.
 */
export function encodeChat(
  formatter: ChatFormatter,
  tokenizer: Pick<Tokenizer, 'encode' | 'idToToken' | 'bosTokenId'>,
  messages: readonly ChatMessageInput[],
  options: RenderOptions = {},
): number[] {
  const text = formatter.render(messages, options);
  return withDefaultPrefix(tokenizer, text, tokenizer.encode(text, { addSpecialTokens: false }));
}

/** encodeChat for requests: the text is encoded in pieces, so a long conversation yields to the event loop and sees an abort. */
export async function encodeChatInPieces(
  formatter: ChatFormatter,
  tokenizer: Pick<Tokenizer, 'encode' | 'encodeInPieces' | 'idToToken' | 'bosTokenId'>,
  messages: readonly ChatMessageInput[],
  options: RenderOptions & { signal?: AbortSignal } = {},
): Promise<number[]> {
  const text = formatter.render(messages, options);
  return withDefaultPrefix(tokenizer, text, await tokenizer.encodeInPieces(text, { addSpecialTokens: false, signal: options.signal }));
}

/** The ids of rendered text with the tokenizer's default prefix in front, unless the text starts with BOS itself. */
function withDefaultPrefix(tokenizer: Pick<Tokenizer, 'encode' | 'idToToken' | 'bosTokenId'>, text: string, ids: number[]): number[] {
  const bos = tokenizer.bosTokenId === null ? undefined : tokenizer.idToToken(tokenizer.bosTokenId);
  if (bos !== undefined && text.startsWith(bos)) return ids;
  return [...defaultPrefix(tokenizer), ...ids];
}

/** The ids the tokenizer puts before the text by default, found by encoding a probe both ways. */
function defaultPrefix(tokenizer: Pick<Tokenizer, 'encode'>): number[] {
  const bare = tokenizer.encode('a', { addSpecialTokens: false });
  const full = tokenizer.encode('a');
  for (let start = 0; start + bare.length <= full.length; start++) {
    if (bare.every((id, i) => full[start + i] === id)) return full.slice(0, start);
  }
  return [];
}

function parseConfig(config: unknown): JsonObject {
  if (config === undefined || config === null) return {};
  let value = config;
  if (typeof config === 'string') {
    try {
      value = JSON.parse(config);
    } catch (e) {
      throw new ChatTemplateError(`tokenizer_config.json is not valid JSON: ${errorMessage(e)}`, 'default', null, { cause: e });
    }
  }
  if (!isJsonObject(value)) {
    throw new ChatTemplateError('tokenizer_config.json must hold a JSON object', 'default', null);
  }
  return value;
}

/**
 * chat_template is a string, or a list of `{ name, template }` with names such as 'default', 'tool_use' and
 * 'rag'; plain chat uses 'default', as transformers does. Absent or null → no template.
 */
function chooseTemplate(value: unknown): { name: string; source: string } | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return { name: 'default', source: value };
  if (Array.isArray(value)) {
    const names: string[] = [];
    for (const entry of value) {
      if (!isJsonObject(entry) || typeof entry.name !== 'string' || typeof entry.template !== 'string') {
        throw new ChatTemplateError(
          'tokenizer_config.json: chat_template list entries must be { "name": string, "template": string }',
          'default',
          null,
        );
      }
      if (entry.name === 'default') return { name: entry.name, source: entry.template };
      names.push(entry.name);
    }
    const listed = names.map((n) => `"${n}"`).join(', ') || 'none';
    throw new ChatTemplateError(`tokenizer_config.json: chat_template lists no "default" template (it has ${listed})`, 'default', null);
  }
  throw new ChatTemplateError('tokenizer_config.json: chat_template must be a string or a list', 'default', null);
}

/**
 * The special-token strings for the template. Config values may be strings or `{ "content": ... }`
 * objects; when the config names no BOS or EOS, the tokenizer's own (e.g. from its post-processor) stands in,
 * so `{{ bos_token }}` never renders as an empty string for a model that has one.
 */
function specialTokens(config: JsonObject, tokenizer: ChatTokenizer): Record<string, string | string[]> {
  const tokens: Record<string, string | string[]> = {};
  for (const field of SPECIAL_TOKEN_FIELDS) {
    const content = tokenContent(config[field]);
    if (content !== null) tokens[field] = content;
  }
  if (tokens.bos_token === undefined && tokenizer.bosTokenId !== null) {
    const bos = tokenizer.idToToken(tokenizer.bosTokenId);
    if (bos !== undefined) tokens.bos_token = bos;
  }
  if (tokens.eos_token === undefined && tokenizer.eosTokenIds.length > 0) {
    const eos = tokenizer.idToToken(tokenizer.eosTokenIds[0]);
    if (eos !== undefined) tokens.eos_token = eos;
  }
  if (Array.isArray(config.additional_special_tokens)) {
    tokens.additional_special_tokens = config.additional_special_tokens
      .map(tokenContent)
      .filter((t): t is string => t !== null);
  }
  return tokens;
}

function tokenContent(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (isJsonObject(value) && typeof value.content === 'string') return value.content;
  return null;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
