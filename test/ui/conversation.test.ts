/**
 * The conversation controller both chat UIs use, against a scripted engine and bubbles that record what
 * they show: replies join the conversation, a failed turn is taken back whole (before or after text
 * arrived), a conversation too long for the context says so and offers New chat, Stop keeps the reply,
 * a turn that outlives New chat leaves the new conversation alone, JSON mode and tools go into the request
 * and tool calls into the reply, and a saved conversation is restored with how its replies ended, and its
 * last turn taken back for edit or regenerate (and put back where its replacement fails).
 */
import { describe, expect, it } from 'vitest';
import type { ChatCompletionChunk, ChatFinishReason, RequestOptions, ToolCall } from '../../src/engine/types';
import { ContextWindowExceededError } from '../../src/model/kv-cache';
import { Conversation, type Bubble, type Bubbles, type TurnEngine, type TurnRequest } from '../../src/ui/conversation';
import type { MessageRole, MessageState } from '../../src/ui/messages';
import { reviveError, serializeError } from '../../src/worker/errors';

interface ShownBubble {
  role: MessageRole;
  text: string;
  state: MessageState;
  note: string;
  toolCalls?: ToolCall[];
}

/** Bubbles as plain records: what is on screen is `shown`. */
function recordingBubbles(): Bubbles & { shown: ShownBubble[] } {
  const shown: ShownBubble[] = [];
  return {
    shown,
    append(role, text, state = 'done'): Bubble {
      const bubble: ShownBubble = { role, text, state, note: '' };
      shown.push(bubble);
      return {
        setText: (next) => void (bubble.text = next),
        setToolCalls: (calls) => void (bubble.toolCalls = structuredClone([...calls])),
        finish: (final, note = '') => Object.assign(bubble, { state: final, note }),
        remove: () => void shown.splice(shown.indexOf(bubble), 1),
      };
    },
    clear: () => void shown.splice(0),
  };
}

function chunk(content: string | undefined, finish: ChatFinishReason | null = null, toolCalls?: ToolCall[]): ChatCompletionChunk {
  const last = finish ? { usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5, prompt_tokens_details: { cached_tokens: 0 } } } : {};
  return {
    id: 'chatcmpl-test',
    object: 'chat.completion.chunk',
    created: 0,
    model: 'test',
    choices: [
      {
        index: 0,
        delta: { ...(content === undefined ? {} : { content }), ...(toolCalls ? { tool_calls: toolCalls.map((call, index) => ({ index, ...call })) } : {}) },
        finish_reason: finish,
        logprobs: null,
      },
    ],
    ...last,
  };
}

/** Each request is answered by the next script: it gets the request and its signal and yields chunks. */
type Script = (request: TurnRequest, signal: AbortSignal) => AsyncGenerator<ChatCompletionChunk>;

function scriptedEngine(...scripts: Script[]): TurnEngine & { requests: TurnRequest[] } {
  const requests: TurnRequest[] = [];
  return {
    requests,
    chat: {
      completions: {
        async create(request: TurnRequest, options: RequestOptions) {
          requests.push(structuredClone(request));
          const script = scripts.shift();
          if (!script) throw new Error('no script left for this request');
          return script(request, options.signal!);
        },
      },
    },
  };
}

const replyWith = (...pieces: string[]): Script =>
  async function* () {
    for (const piece of pieces) yield chunk(piece);
    yield chunk(undefined, 'stop');
  };

const failWith = (error: unknown, ...before: string[]): Script =>
  async function* () {
    for (const piece of before) yield chunk(piece);
    throw error;
  };

const SETTINGS = { systemPrompt: 'Be brief.', sampling: { temperature: 0, max_tokens: 16 } };

describe('Conversation', () => {
  it('streams a reply into its bubble and adds the turn, with the system prompt first in the request', async () => {
    const bubbles = recordingBubbles();
    const conversation = new Conversation(bubbles);
    const engine = scriptedEngine(replyWith('Hel', 'lo'), replyWith('Again'));
    const seen: string[] = [];
    const outcome = await conversation.send(engine, 'Hi', SETTINGS, (text) => seen.push(text));
    expect(outcome).toMatchObject({ status: 'done', content: 'Hello', finishReason: 'stop', usage: { total_tokens: 5 } });
    expect(seen).toEqual(['Hel', 'Hello']);
    expect(conversation.messages).toEqual([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello' },
    ]);
    expect(bubbles.shown).toEqual([
      { role: 'user', text: 'Hi', state: 'done', note: '' },
      { role: 'assistant', text: 'Hello', state: 'done', note: '' },
    ]);
    expect(engine.requests[0]).toEqual({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
      ],
      stream: true,
      temperature: 0,
      max_tokens: 16,
    });
    expect(conversation.lastRequest).toEqual(engine.requests[0]);
    expect(conversation.busy).toBe(false);

    await conversation.send(engine, 'More', { systemPrompt: '  ', sampling: {} });
    expect(engine.requests[1].messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(conversation.messages).toHaveLength(4);
  });

  it('takes a failed turn back whole, whether it failed before or after text arrived', async () => {
    const bubbles = recordingBubbles();
    const conversation = new Conversation(bubbles);
    const engine = scriptedEngine(replyWith('One'), failWith(new Error('boom')), failWith(new TypeError('lost'), 'Half a rep'), replyWith('Two'));
    await conversation.send(engine, 'first', SETTINGS);
    const before = structuredClone(conversation.messages);

    const early = await conversation.send(engine, 'second', SETTINGS);
    expect(early).toMatchObject({ status: 'failed', text: 'second', offerNewChat: false, description: { kind: 'other', detail: 'boom' } });
    expect(conversation.messages).toEqual(before);
    expect(bubbles.shown.map((b) => b.text)).toEqual(['first', 'One']);

    const late = await conversation.send(engine, 'third', SETTINGS);
    expect(late).toMatchObject({ status: 'failed', text: 'third', offerNewChat: false });
    expect(conversation.messages).toEqual(before);
    expect(bubbles.shown.map((b) => b.text)).toEqual(['first', 'One']);
    expect(conversation.busy).toBe(false);

    // The conversation goes on as if the failed turns had not been sent.
    await conversation.send(engine, 'fourth', SETTINGS);
    expect(engine.requests[3].messages.slice(1).map((m) => m.content)).toEqual(['first', 'One', 'fourth']);
  });

  it('says a conversation too long for the context is too long and offers New chat, also for errors from a worker', async () => {
    const bubbles = recordingBubbles();
    const conversation = new Conversation(bubbles);
    const tooLong = new ContextWindowExceededError(600, 512, 'The prompt is');
    const engine = scriptedEngine(replyWith('Sure'), failWith(tooLong), failWith(reviveError(serializeError(tooLong))), replyWith('Fresh'));
    await conversation.send(engine, 'a long story', SETTINGS);
    for (const text of ['go on', 'and on']) {
      const outcome = await conversation.send(engine, text, SETTINGS);
      expect(outcome).toMatchObject({
        status: 'failed',
        text,
        offerNewChat: true,
        description: { kind: 'context', title: 'The conversation is too long', detail: tooLong.message },
      });
      expect(conversation.messages).toHaveLength(2);
    }
    conversation.clear();
    expect(conversation.messages).toEqual([]);
    expect(bubbles.shown).toEqual([]);
    await expect(conversation.send(engine, 'hello again', SETTINGS)).resolves.toMatchObject({ status: 'done', content: 'Fresh' });
    expect(engine.requests[3].messages.slice(1)).toEqual([{ role: 'user', content: 'hello again' }]);
  });

  it('Stop ends the reply where it is and keeps it, marked as stopped; a reply cut by max_tokens says so', async () => {
    const bubbles = recordingBubbles();
    const conversation = new Conversation(bubbles);
    const untilStopped: Script = async function* (_request, signal) {
      yield chunk('Once');
      conversation.stop();
      expect(signal.aborted).toBe(true);
      yield chunk(undefined, 'abort');
    };
    const cut: Script = async function* () {
      yield chunk('Long');
      yield chunk(undefined, 'length');
    };
    const engine = scriptedEngine(untilStopped, cut);
    await expect(conversation.send(engine, 'Tell me', SETTINGS)).resolves.toMatchObject({ status: 'done', finishReason: 'abort' });
    expect(conversation.messages.at(-1)).toEqual({ role: 'assistant', content: 'Once' });
    expect(bubbles.shown.at(-1)).toMatchObject({ state: 'stopped', note: 'Stopped.' });
    await conversation.send(engine, 'More', SETTINGS);
    expect(bubbles.shown.at(-1)).toMatchObject({ text: 'Long', state: 'done', note: 'Reached the token limit.' });
  });

  it('a turn that outlives New chat, ending or failing, leaves the new conversation alone', async () => {
    const bubbles = recordingBubbles();
    const conversation = new Conversation(bubbles);
    let clearedWhile = '';
    const clearMidReply: Script = async function* (_request, signal) {
      yield chunk('Partial');
      conversation.clear();
      clearedWhile = signal.aborted ? 'aborted' : 'running';
      yield chunk(undefined, 'abort');
    };
    const clearThenFail: Script = async function* () {
      conversation.clear();
      throw new Error('late failure');
    };
    const engine = scriptedEngine(clearMidReply, clearThenFail);
    await expect(conversation.send(engine, 'one', SETTINGS)).resolves.toEqual({ status: 'cleared' });
    expect(clearedWhile).toBe('aborted');
    expect(conversation.messages).toEqual([]);
    expect(bubbles.shown).toEqual([]);
    await expect(conversation.send(engine, 'two', SETTINGS)).resolves.toEqual({ status: 'cleared' });
    expect(conversation.messages).toEqual([]);
    expect(bubbles.shown).toEqual([]);
  });

  it('refuses a second message while a reply is being written', async () => {
    const conversation = new Conversation(recordingBubbles());
    let release!: () => void;
    const slow: Script = async function* () {
      await new Promise<void>((resolve) => (release = resolve));
      yield chunk('Done', 'stop');
    };
    const engine = scriptedEngine(slow);
    const first = conversation.send(engine, 'one', SETTINGS);
    expect(conversation.busy).toBe(true);
    await expect(conversation.send(engine, 'two', SETTINGS)).rejects.toThrow(/still being written/);
    await new Promise((resolve) => setTimeout(resolve, 0));
    release();
    await expect(first).resolves.toMatchObject({ status: 'done', content: 'Done' });
    expect(conversation.messages.map((m) => m.content)).toEqual(['one', 'Done']);
  });

  it('sends JSON mode and tools only when set, and shows the tool calls a reply makes', async () => {
    const bubbles = recordingBubbles();
    const conversation = new Conversation(bubbles);
    const call: ToolCall = { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } };
    const callsTool: Script = async function* () {
      yield chunk(undefined, null, [call]);
      yield chunk(undefined, 'tool_calls');
    };
    const engine = scriptedEngine(replyWith('{}'), callsTool);
    const tools = [{ type: 'function' as const, function: { name: 'get_weather' } }];
    await conversation.send(engine, 'json please', { ...SETTINGS, responseFormat: { type: 'json_object' }, tools: [], toolChoice: 'required' });
    expect(engine.requests[0]).toMatchObject({ response_format: { type: 'json_object' } });
    expect(engine.requests[0]).not.toHaveProperty('tools');
    expect(engine.requests[0]).not.toHaveProperty('tool_choice');

    const outcome = await conversation.send(engine, 'weather?', { ...SETTINGS, tools, toolChoice: 'required' });
    expect(engine.requests[1]).toMatchObject({ tools, tool_choice: 'required' });
    expect(engine.requests[1]).not.toHaveProperty('response_format');
    expect(outcome).toMatchObject({ status: 'done', content: '', toolCalls: [call], finishReason: 'tool_calls' });
    expect(conversation.messages.at(-1)).toEqual({ role: 'assistant', content: '', tool_calls: [call] });
    expect(bubbles.shown.at(-1)).toEqual({ role: 'assistant', text: '', state: 'done', note: '', toolCalls: [call] });
  });

  it('restores saved entries with how each reply ended, and takes back the last turn for edit or regenerate', async () => {
    const bubbles = recordingBubbles();
    const conversation = new Conversation(bubbles);
    const call: ToolCall = { id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } };
    conversation.restore([
      { message: { role: 'user', content: 'one' } },
      { message: { role: 'assistant', content: 'cut', tool_calls: [call] }, ending: 'length' },
      { message: { role: 'user', content: 'two' } },
      { message: { role: 'assistant', content: 'half' }, ending: 'interrupted' },
    ]);
    expect(conversation.messages.map((m) => m.content)).toEqual(['one', 'cut', 'two', 'half']);
    expect(bubbles.shown).toEqual([
      { role: 'user', text: 'one', state: 'done', note: '' },
      { role: 'assistant', text: 'cut', state: 'done', note: 'Reached the token limit.', toolCalls: [call] },
      { role: 'user', text: 'two', state: 'done', note: '' },
      { role: 'assistant', text: 'half', state: 'interrupted', note: 'Interrupted: the page closed while this reply was being written.' },
    ]);
    expect(conversation.takeBackLastTurn()).toBe('two');
    expect(conversation.entries).toHaveLength(2);
    expect(bubbles.shown.map((b) => b.text)).toEqual(['one', 'cut']);

    const engine = scriptedEngine(replyWith('Fresh'));
    await conversation.send(engine, 'two, edited', SETTINGS);
    expect(engine.requests[0].messages.slice(1)).toEqual([
      { role: 'user', content: 'one' },
      { role: 'assistant', content: 'cut', tool_calls: [call] },
      { role: 'user', content: 'two, edited' },
    ]);
    expect(conversation.entries.at(-1)).toEqual({ message: { role: 'assistant', content: 'Fresh' } });
    expect(conversation.takeBackLastTurn()).toBe('two, edited');
    expect(conversation.takeBackLastTurn()).toBe('one');
    expect(conversation.takeBackLastTurn()).toBeNull();
    expect(bubbles.shown).toEqual([]);
  });

  it('puts a taken-back turn back where the edit or regenerate that replaced it fails, and only then', async () => {
    const bubbles = recordingBubbles();
    const conversation = new Conversation(bubbles);
    const saved = [
      { message: { role: 'user' as const, content: 'only question' } },
      { message: { role: 'assistant' as const, content: 'only answer' }, ending: 'length' as const },
    ];
    conversation.restore(saved);
    const engine = scriptedEngine(failWith(new Error('boom'), 'Half'), replyWith('New answer'), failWith(new Error('again')));
    expect(conversation.takeBackLastTurn()).toBe('only question');
    const failed = await conversation.send(engine, 'only question, edited', SETTINGS);
    expect(failed).toMatchObject({ status: 'failed', text: 'only question, edited' });
    expect(conversation.entries).toEqual(saved);
    expect(bubbles.shown.map((b) => [b.text, b.state])).toEqual([
      ['only question', 'done'],
      ['only answer', 'done'],
    ]);

    // Once a replacement succeeded, a later failure takes back only its own turn.
    conversation.takeBackLastTurn();
    await conversation.send(engine, 'asked again', SETTINGS);
    const after = structuredClone(conversation.entries);
    await conversation.send(engine, 'next', SETTINGS);
    expect(conversation.entries).toEqual(after);
    expect(after.map((e) => e.message.content)).toEqual(['asked again', 'New answer']);

    // New chat after a take-back forgets it: a failure then leaves the new conversation empty.
    conversation.takeBackLastTurn();
    conversation.clear();
    await conversation.send(scriptedEngine(failWith(new Error('no'))), 'fresh', SETTINGS);
    expect(conversation.entries).toEqual([]);
  });
});
