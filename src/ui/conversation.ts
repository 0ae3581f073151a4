/**
 * One conversation with a chat engine, shared by the chat page and <llm-chat>: it keeps the messages (and how
 * each reply ended), shows each turn as a user bubble and a streaming reply (tool calls as a block), and has
 * one failure policy. A turn that fails is taken
 * back whole (both bubbles go, the text is handed back for the input box), so the conversation holds only
 * what the engine answered and the next message can still be sent; when the failure is that the conversation
 * no longer fits the model's context, the outcome says to offer New chat. No DOM here: the bubbles are
 * whatever `Bubbles` the page gives (ui/messages.ts in both pages).
 */
import type {
  ChatCompletionChunk,
  ChatCompletionMessageParam,
  ChatCompletionRequest,
  ChatFinishReason,
  RequestOptions,
  ResponseFormat,
  Timings,
  Tool,
  ToolCall,
  ToolChoice,
  Usage,
} from '../engine/types';
import { describeError, type ErrorDescription } from '../errors';
import type { MessageRole, MessageState } from './messages';

export interface Bubble {
  /** The whole text so far, not a delta. */
  setText(text: string): void;
  /** Shows the calls the reply made, each as a block (function name and arguments). */
  setToolCalls(calls: readonly ToolCall[]): void;
  finish(state: Exclude<MessageState, 'streaming'>, note?: string): void;
  remove(): void;
}

export interface Bubbles {
  append(role: MessageRole, text: string, state?: MessageState): Bubble;
  clear(): void;
}

/** What each turn is asked with besides the messages, read when the turn starts. */
export interface TurnSettings {
  /** Sent first when it is not blank. */
  systemPrompt?: string | null;
  sampling: Pick<ChatCompletionRequest, 'temperature' | 'top_p' | 'top_k' | 'max_tokens'>;
  /** e.g. `{ type: 'json_object' }` for JSON mode; sent only when set. */
  responseFormat?: ResponseFormat | null;
  /** Functions the model may call, and whether it must; sent only when there are tools. */
  tools?: Tool[] | null;
  toolChoice?: ToolChoice | null;
}

/** How a reply ended when not by itself: Stop, the token limit, or the page closing while it was written. */
export type ReplyEnding = 'stopped' | 'length' | 'interrupted';

/** A message of the conversation and, for a reply, how it ended (absent: it ended by itself). */
export interface ConversationEntry {
  message: ChatCompletionMessageParam;
  ending?: ReplyEnding;
}

const ENDING_NOTES: Record<ReplyEnding, string> = {
  stopped: 'Stopped.',
  length: 'Reached the token limit.',
  interrupted: 'Interrupted: the page closed while this reply was being written.',
};

export type TurnOutcome =
  | { status: 'done'; content: string; toolCalls: ToolCall[]; finishReason: ChatFinishReason | null; usage: Usage | null; timings: Timings | null }
  | {
      status: 'failed';
      error: unknown;
      description: ErrorDescription;
      /** The user's text, for the input box: the turn is no longer in the conversation (a turn it replaced is back). */
      text: string;
      /** The conversation is too long for the context: only a new chat can go on. */
      offerNewChat: boolean;
    }
  /** New chat was started while the turn ran; its result belongs to no conversation. */
  | { status: 'cleared' };

/** The request of a turn: streamed, the system prompt first. */
export type TurnRequest = ChatCompletionRequest & { stream: true };

/** What a turn needs of an engine (an Engine, or a ChatEngine in a worker or this thread). */
export interface TurnEngine {
  readonly chat: { readonly completions: { create(request: TurnRequest, options: RequestOptions): Promise<AsyncIterable<ChatCompletionChunk>> } };
}

/** The text a message shows: its content, with content parts joined. */
export function messageText(message: ChatCompletionMessageParam): string {
  const { content } = message;
  return typeof content === 'string' ? content : content === null ? '' : content.map((part) => part.text).join('');
}

export class Conversation {
  private turns: ConversationEntry[] = [];
  private generation: AbortController | undefined;
  /** Counts New chats, so a turn that outlives its conversation leaves the next one alone. */
  private epoch = 0;
  /** The whole conversation before the last take-back: put back if the turn sent in its place fails. */
  private beforeTakeBack: ConversationEntry[] | undefined;
  /** The request of the latest turn, as sent. */
  lastRequest: TurnRequest | null = null;

  constructor(private readonly bubbles: Bubbles) {}

  /** The messages so far, user and assistant alternating (without the system prompt). */
  get messages(): readonly ChatCompletionMessageParam[] {
    return this.turns.map((entry) => entry.message);
  }

  /** The messages with how each reply ended: what a saved conversation keeps. */
  get entries(): readonly ConversationEntry[] {
    return this.turns;
  }

  get busy(): boolean {
    return this.generation !== undefined;
  }

  /** Ends the running reply where it is; it stays in the conversation, marked as stopped. */
  stop(): void {
    this.generation?.abort();
  }

  /** New chat: stops the running reply and forgets every message. */
  clear(): void {
    this.restore([]);
  }

  /** Replaces the conversation with `entries` (a saved one reopened), stopping any running reply. */
  restore(entries: readonly ConversationEntry[]): void {
    this.stop();
    this.epoch++;
    this.beforeTakeBack = undefined;
    this.turns = entries.map((entry) => structuredClone(entry));
    this.bubbles.clear();
    for (const { message, ending } of this.turns) {
      if (message.role !== 'user' && message.role !== 'assistant') continue;
      const bubble = this.bubbles.append(message.role, messageText(message));
      if (message.tool_calls?.length) bubble.setToolCalls(message.tool_calls);
      bubble.finish(ending === 'stopped' || ending === 'interrupted' ? ending : 'done', ending ? ENDING_NOTES[ending] : '');
    }
  }

  /**
   * Takes back the last user message and everything after it (to edit it, or to ask again for a new reply)
   * and returns its text; null when there is none. Not while a reply is being written. Where the next turn
   * fails, what was taken back comes back, so a failed edit or regenerate loses nothing.
   */
  takeBackLastTurn(): string | null {
    if (this.generation) throw new Error('A reply is still being written; stop it or wait for it first.');
    let last = this.turns.length - 1;
    while (last >= 0 && this.turns[last].message.role !== 'user') last--;
    if (last < 0) return null;
    const text = messageText(this.turns[last].message);
    const before = this.turns;
    this.restore(this.turns.slice(0, last));
    this.beforeTakeBack = before;
    return text;
  }

  /**
   * Sends `text` as the next user message and streams the reply into a bubble. `onText` sees the whole
   * reply so far after every piece. Settles with the outcome; never rejects for an engine error.
   */
  async send(
    engine: TurnEngine,
    text: string,
    settings: TurnSettings,
    onText?: (content: string) => void,
  ): Promise<TurnOutcome> {
    if (this.generation) throw new Error('A reply is still being written; stop it or wait for it before sending.');
    const epoch = this.epoch;
    const takenBackFrom = this.beforeTakeBack;
    this.beforeTakeBack = undefined;
    this.turns.push({ message: { role: 'user', content: text } });
    const question = this.bubbles.append('user', text);
    const reply = this.bubbles.append('assistant', '', 'streaming');
    const system: ChatCompletionMessageParam[] = settings.systemPrompt?.trim() ? [{ role: 'system', content: settings.systemPrompt }] : [];
    const request: TurnRequest = { messages: [...system, ...this.messages], stream: true, ...settings.sampling };
    if (settings.responseFormat) request.response_format = settings.responseFormat;
    if (settings.tools?.length) {
      request.tools = settings.tools;
      if (settings.toolChoice) request.tool_choice = settings.toolChoice;
    }
    this.lastRequest = request;
    const controller = new AbortController();
    this.generation = controller;
    let content = '';
    const toolCalls: ToolCall[] = [];
    let finishReason: ChatFinishReason | null = null;
    let usage: Usage | null = null;
    let timings: Timings | null = null;
    try {
      const stream = await engine.chat.completions.create(request, { signal: controller.signal });
      for await (const chunk of stream) {
        const choice = chunk.choices[0];
        if (choice.delta.content) {
          content += choice.delta.content;
          reply.setText(content);
          onText?.(content);
        }
        // Each call comes whole in one delta (see ToolCallDelta).
        if (choice.delta.tool_calls?.length) {
          for (const { index: _index, ...call } of choice.delta.tool_calls) toolCalls.push(call);
          reply.setToolCalls(toolCalls);
        }
        if (choice.finish_reason) {
          finishReason = choice.finish_reason;
          usage = chunk.usage ?? null;
          timings = chunk.timings ?? null;
        }
      }
    } catch (error) {
      if (epoch !== this.epoch) return { status: 'cleared' };
      this.turns.pop();
      question.remove();
      reply.remove();
      if (takenBackFrom) this.restore(takenBackFrom);
      const description = describeError(error);
      return { status: 'failed', error, description, text, offerNewChat: description.kind === 'context' };
    } finally {
      if (this.generation === controller) this.generation = undefined;
    }
    if (epoch !== this.epoch) return { status: 'cleared' };
    const ending: ReplyEnding | undefined = finishReason === 'abort' ? 'stopped' : finishReason === 'length' ? 'length' : undefined;
    const message: ChatCompletionMessageParam = { role: 'assistant', content };
    if (toolCalls.length) message.tool_calls = toolCalls;
    this.turns.push(ending ? { message, ending } : { message });
    reply.finish(ending === 'stopped' ? 'stopped' : 'done', ending ? ENDING_NOTES[ending] : '');
    return { status: 'done', content, toolCalls, finishReason, usage, timings };
  }
}
