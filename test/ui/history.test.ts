/**
 * The chat page's conversation store on a Map (the browser's IndexedDB path is in test/browser/conversations):
 * saved conversations list latest first without their messages, reopen as saved, one cut off mid-reply comes
 * back marked interrupted, rename and delete, a delete wins over a later save, the limits refuse with a
 * problem instead of throwing, a failing backend reports once per call and loses nothing in memory (a failed first read is retried), and
 * the throttled saver writes at most once per interval with the latest state.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ConversationEntry } from '../../src/ui/conversation';
import {
  ConversationStore,
  markInterrupted,
  memoryBackend,
  openConversationStore,
  ThrottledSaver,
  titleFrom,
  type ConversationRecord,
  type KeyValueBackend,
  type StoreProblem,
} from '../../src/ui/chat/history';

const entries = (...texts: string[]): ConversationEntry[] =>
  texts.map((content, i) => ({ message: { role: i % 2 === 0 ? 'user' : 'assistant', content } }));

function record(id: string, updatedAt: number, list: ConversationEntry[], writing = false): ConversationRecord {
  return { id, title: titleFrom(list), model: 'local/stories260K', createdAt: updatedAt, updatedAt, writing, entries: list };
}

/** A Map backend that counts reads of message keys, and can be made to fail. */
function observedBackend(): KeyValueBackend & { entryReads: number; failWith?: Error } {
  const inner = memoryBackend();
  const backend = {
    entryReads: 0,
    failWith: undefined as Error | undefined,
    keys: () => (backend.failWith ? Promise.reject(backend.failWith) : inner.keys()),
    getMany: (keys: readonly string[]) => {
      backend.entryReads += keys.filter((k) => k.startsWith('entries:')).length;
      return backend.failWith ? Promise.reject(backend.failWith) : inner.getMany(keys);
    },
    setMany: (e: readonly (readonly [string, unknown])[]) => (backend.failWith ? Promise.reject(backend.failWith) : inner.setMany(e)),
    delMany: (keys: readonly string[]) => (backend.failWith ? Promise.reject(backend.failWith) : inner.delMany(keys)),
  };
  return backend;
}

describe('ConversationStore', () => {
  it('lists the latest first without reading messages, and reopens a conversation as saved', async () => {
    const backend = observedBackend();
    const store = new ConversationStore(backend);
    await store.save(record('a', 100, entries('First question', 'First answer')));
    await store.save(record('b', 300, entries('Second', 'Reply')));
    await store.save(record('c', 200, entries('Third')));
    const listed = await store.list();
    expect(listed.map((s) => s.id)).toEqual(['b', 'c', 'a']);
    expect(listed[2]).toEqual({ id: 'a', title: 'First question', model: 'local/stories260K', createdAt: 100, updatedAt: 100, writing: false });
    expect(backend.entryReads).toBe(0);
    // A fresh store on the same backend (a reload) sees the same.
    const reloaded = new ConversationStore(backend);
    expect((await reloaded.list()).map((s) => s.id)).toEqual(['b', 'c', 'a']);
    await expect(reloaded.open('a')).resolves.toEqual(record('a', 100, entries('First question', 'First answer')));
    await expect(reloaded.open('missing')).resolves.toBeNull();
  });

  it('reopens a conversation saved mid-reply with that reply marked interrupted, and saves it so', async () => {
    const backend = memoryBackend();
    const list = entries('Tell me a story', 'Once upon a ti');
    await new ConversationStore(backend).save(record('x', 1, list, true));
    const reopened = await new ConversationStore(backend).open('x');
    expect(reopened?.writing).toBe(false);
    expect(reopened?.entries).toEqual([list[0], { ...list[1], ending: 'interrupted' }]);
    const again = await new ConversationStore(backend).open('x');
    expect(again).toEqual(reopened);
    // A reply that had not begun: the user's message alone is left as it was.
    expect(markInterrupted(record('y', 1, entries('Hi'), true)).entries).toEqual(entries('Hi'));
    expect(markInterrupted(record('z', 1, list))).toEqual(record('z', 1, list));
  });

  it('renames (trimmed, cut to the limit) and deletes for good; a save after the delete does not bring it back', async () => {
    const backend = memoryBackend();
    const store = new ConversationStore(backend, undefined, { maxConversations: 10, maxConversationChars: 10_000, maxTitleChars: 12 });
    await store.save(record('a', 1, entries('Hello there', 'Hi')));
    await expect(store.rename('a', '  My   favourite chat  ')).resolves.toBe('My favourite');
    expect((await store.list())[0].title).toBe('My favourite');
    await expect(store.rename('a', '   ')).resolves.toBeNull();
    await expect(store.rename('missing', 'x')).resolves.toBeNull();

    const lateSave = store.save(record('a', 2, entries('Hello there', 'Hi', 'More')));
    await expect(store.remove('a')).resolves.toBe(true);
    await lateSave;
    await expect(store.save(record('a', 3, entries('Hello there')))).resolves.toBe(false);
    expect(await backend.keys()).toEqual([]);
    expect(await store.list()).toEqual([]);
    await expect(store.open('a')).resolves.toBeNull();
  });

  it('refuses, with a problem and without throwing, a conversation past the count or size limit', async () => {
    const problems: StoreProblem[] = [];
    const store = new ConversationStore(memoryBackend(), (p) => problems.push(p), { maxConversations: 2, maxConversationChars: 200, maxTitleChars: 80 });
    await expect(store.save(record('a', 1, entries('one')))).resolves.toBe(true);
    await expect(store.save(record('b', 2, entries('two')))).resolves.toBe(true);
    await expect(store.save(record('c', 3, entries('three')))).resolves.toBe(false);
    expect(problems.map((p) => p.kind)).toEqual(['full']);
    // Existing ones are still saved, until one is too large; then what was saved stays.
    await expect(store.save(record('a', 4, entries('one', 'more')))).resolves.toBe(true);
    await expect(store.save(record('a', 5, entries('one', 'x'.repeat(300))))).resolves.toBe(false);
    expect(problems.map((p) => p.kind)).toEqual(['full', 'too-large']);
    expect((await store.open('a'))?.entries).toEqual(entries('one', 'more'));
    await store.remove('b');
    await expect(store.save(record('c', 6, entries('three')))).resolves.toBe(true);
  });

  it('reports a failing backend (quota, or anything else) and goes on', async () => {
    const problems: StoreProblem[] = [];
    const backend = observedBackend();
    const store = new ConversationStore(backend, (p) => problems.push(p));
    await store.save(record('a', 1, entries('kept')));
    backend.failWith = new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    await expect(store.save(record('b', 2, entries('lost')))).resolves.toBe(false);
    backend.failWith = new Error('disk on fire');
    await expect(store.list()).resolves.toEqual([]);
    await expect(store.open('a')).resolves.toBeNull();
    await expect(store.remove('a')).resolves.toBe(false);
    expect(problems.map((p) => p.kind)).toEqual(['quota', 'failed', 'failed', 'failed']);
    expect(problems[1].message).toContain('disk on fire');
    backend.failWith = undefined;
    expect((await store.list()).map((s) => s.id)).toEqual(['a']);
  });

  it('reads the stored ids again after the first read failed, instead of failing every later call', async () => {
    const problems: StoreProblem[] = [];
    const backend = observedBackend();
    await new ConversationStore(backend).save(record('a', 1, entries('saved before the reload')));
    const store = new ConversationStore(backend, (p) => problems.push(p));
    backend.failWith = new Error('database busy');
    await expect(store.save(record('b', 2, entries('lost')))).resolves.toBe(false);
    backend.failWith = undefined;
    await expect(store.save(record('c', 3, entries('saved')))).resolves.toBe(true);
    expect((await store.list()).map((s) => s.id)).toEqual(['c', 'a']);
    await expect(store.remove('a')).resolves.toBe(true);
    expect(problems.map((p) => p.kind)).toEqual(['failed']);
  });

  it('where there is no IndexedDB (as in Node) says so and keeps conversations in memory', async () => {
    const problems: StoreProblem[] = [];
    const store = await openConversationStore((p) => problems.push(p));
    expect(problems).toEqual([{ kind: 'unavailable', message: expect.stringMatching(/cannot be saved.*no IndexedDB.*until the page closes/) }]);
    expect(store.persistent).toBe(false);
    await expect(store.save(record('a', 1, entries('in memory')))).resolves.toBe(true);
    expect((await store.list()).map((s) => s.title)).toEqual(['in memory']);
  });

  it('titles a conversation by its first user message', () => {
    expect(titleFrom(entries('  Once\n upon   a time  ', 'reply'))).toBe('Once upon a time');
    expect(titleFrom(entries('x'.repeat(100)), 10)).toBe(`${'x'.repeat(9)}…`);
    expect(titleFrom([])).toBe('New conversation');
  });
});

describe('ThrottledSaver', () => {
  afterEach(() => void vi.useRealTimers());

  it('saves the latest state at most once per interval, and at once on flush; cancel drops what is pending', async () => {
    vi.useFakeTimers({ now: 0 });
    const saved: string[] = [];
    const saver = new ThrottledSaver(async (r) => void saved.push(String(r.entries.at(-1)?.message.content)), 500);
    saver.update(record('a', 0, entries('q', 'O')));
    await vi.advanceTimersByTimeAsync(0);
    expect(saved).toEqual(['O']);
    saver.update(record('a', 0, entries('q', 'On')));
    saver.update(record('a', 0, entries('q', 'Onc')));
    await vi.advanceTimersByTimeAsync(499);
    expect(saved).toEqual(['O']);
    await vi.advanceTimersByTimeAsync(1);
    expect(saved).toEqual(['O', 'Onc']);
    saver.update(record('a', 0, entries('q', 'Once')));
    await saver.flush();
    expect(saved).toEqual(['O', 'Onc', 'Once']);
    await saver.flush();
    expect(saved).toHaveLength(3);
    saver.update(record('a', 0, entries('q', 'Once u')));
    saver.cancel();
    await vi.advanceTimersByTimeAsync(1000);
    expect(saved).toHaveLength(3);
  });
});
