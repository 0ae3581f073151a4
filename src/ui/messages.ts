/**
 * The list of chat bubbles, shared by the chat page and <llm-chat>. User text is shown as typed (a text
 * node); assistant text goes through the safe Markdown renderer, at most once per animation frame while
 * it streams, and once more when the reply ends so the last state is always on screen. Tool calls are a
 * block under the text: the function's name and its arguments (indented when they are JSON), as text nodes.
 */
import type { ToolCall } from '../engine/types';
import { renderMarkdown } from './markdown';

export type MessageRole = 'user' | 'assistant';
/** 'interrupted': the page closed while the reply was being written (a saved conversation reopened). */
export type MessageState = 'streaming' | 'done' | 'stopped' | 'interrupted' | 'error';

export interface MessageView {
  readonly element: HTMLLIElement;
  /** Replaces the text (the whole reply so far, not a delta). */
  setText(text: string): void;
  /** Replaces the tool-call block. */
  setToolCalls(calls: readonly ToolCall[]): void;
  /** Renders any pending text now and marks the bubble. */
  finish(state: Exclude<MessageState, 'streaming'>, note?: string): void;
  /** Takes the bubble off the list (a turn taken back). */
  remove(): void;
}

export interface MessageList {
  readonly element: HTMLOListElement;
  append(role: MessageRole, text: string, state?: MessageState): MessageView;
  clear(): void;
}

function prettyArguments(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function toolCallBlock(call: ToolCall): HTMLElement {
  const block = document.createElement('figure');
  block.className = 'tool-call';
  block.setAttribute('part', 'tool-call');
  const caption = document.createElement('figcaption');
  const name = document.createElement('code');
  name.className = 'name';
  name.textContent = call.function.name;
  caption.append('Tool call: ', name);
  const args = document.createElement('pre');
  args.className = 'arguments';
  args.setAttribute('aria-label', `Arguments of ${call.function.name}`);
  args.textContent = prettyArguments(call.function.arguments);
  block.append(caption, args);
  return block;
}

export function createMessageList(): MessageList {
  const list = document.createElement('ol');
  list.className = 'messages';
  list.setAttribute('part', 'messages');
  list.setAttribute('aria-live', 'polite');

  // Keep the newest text in view unless the reader scrolled up to read something else.
  const scrollToEnd = (wasAtEnd: boolean) => {
    if (wasAtEnd) list.scrollTop = list.scrollHeight;
  };
  const atEnd = () => list.scrollHeight - list.scrollTop - list.clientHeight < 48;

  return {
    element: list,
    clear: () => list.replaceChildren(),
    append(role, initial, state = 'done') {
      const item = document.createElement('li');
      item.className = `message ${role}`;
      item.setAttribute('part', `message ${role}`);
      item.dataset.state = state;
      const body = document.createElement('div');
      body.className = 'body';
      const note = document.createElement('div');
      note.className = 'note';
      const calls = document.createElement('div');
      calls.className = 'tool-calls';
      item.append(body, calls, note);

      let text = initial;
      let frame: number | undefined;
      const render = () => {
        if (frame !== undefined) cancelAnimationFrame(frame);
        frame = undefined;
        const wasAtEnd = atEnd();
        if (role === 'assistant') body.replaceChildren(renderMarkdown(text));
        else body.textContent = text;
        scrollToEnd(wasAtEnd);
      };
      render();
      const wasAtEnd = atEnd();
      list.append(item);
      scrollToEnd(wasAtEnd || role === 'user');

      return {
        element: item,
        setText(next) {
          text = next;
          frame ??= requestAnimationFrame(render);
        },
        setToolCalls(list) {
          calls.replaceChildren(...list.map(toolCallBlock));
        },
        finish(final, noteText = '') {
          render();
          item.dataset.state = final;
          note.textContent = noteText;
        },
        remove() {
          if (frame !== undefined) cancelAnimationFrame(frame);
          frame = undefined;
          item.remove();
        },
      };
    },
  };
}
