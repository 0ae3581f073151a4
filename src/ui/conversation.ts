/**
 * One conversation with a chat engine, shared by the chat page and <llm-chat>: it keeps the messages, shows
 * each turn as a user bubble and a streaming reply, and has one failure policy. A turn that fails is taken
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
  Timings,
  Usage,
} from '../engine/types';
import { describeError, type ErrorDescription } from '../errors';
import type { MessageRole, MessageState } from './messages';

export interface Bubble {
  /** The whole text so far, not a delta. */
  setText(text: string): void;
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
}

export type TurnOutcome =
  | { status: 'done'; content: string; finishReason: ChatFinishReason | null; usage: Usage | null; timings: Timings | null }
  | {
      status: 'failed';
      error: unknown;
      description: ErrorDescription;
      /** The user's text, for the input box: the turn is no longer in the conversation. */
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

export class Conversation {
  private turns: ChatCompletionMessageParam[] = [];
  private generation: AbortController | undefined;
  /** Counts New chats, so a turn that outlives its conversation leaves the next one alone. */
  private epoch = 0;
  /** The request of the latest turn, as sent. */
  lastRequest: TurnRequest | null = null;

  constructor(private readonly bubbles: Bubbles) {}

  /** The messages so far, user and assistant alternating (without the system prompt). */
  get messages(): readonly ChatCompletionMessageParam[] {
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
    this.stop();
    this.epoch++;
    this.turns = [];
    this.bubbles.clear();
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
    this.turns.push({ role: 'user', content: text });
    const question = this.bubbles.append('user', text);
    const reply = this.bubbles.append('assistant', '', 'streaming');
    const system: ChatCompletionMessageParam[] = settings.systemPrompt?.trim() ? [{ role: 'system', content: settings.systemPrompt }] : [];
    const request: TurnRequest = { messages: [...system, ...this.turns], stream: true, ...settings.sampling };
    this.lastRequest = request;
    const controller = new AbortController();
    this.generation = controller;
    let content = '';
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
      const description = describeError(error);
      return { status: 'failed', error, description, text, offerNewChat: description.kind === 'context' };
    } finally {
      if (this.generation === controller) this.generation = undefined;
    }
    if (epoch !== this.epoch) return { status: 'cleared' };
    this.turns.push({ role: 'assistant', content });
    const stopped = finishReason === 'abort';
    reply.finish(stopped ? 'stopped' : 'done', stopped ? 'Stopped.' : finishReason === 'length' ? 'Reached the token limit.' : '');
    return { status: 'done', content, finishReason, usage, timings };
  }
}
