/**
 * The chat page's saved conversations, in IndexedDB through idb-keyval's custom store
 * `webgpu-llm-chat`/`conversations` (apart from the model cache). Each conversation is two keys written in
 * one transaction: `summary:<id>` (what the list shows) and `entries:<id>` (the messages), so listing never
 * reads the messages. A reply is saved while it streams with `writing: true`; a conversation found still
 * `writing` when it is opened was cut off by the page closing, and its last reply is marked interrupted.
 *
 * Storage is bounded (conversations kept, characters per conversation, title length). A failure never
 * throws at the page: it is reported once through `onProblem` and the chat goes on in memory. Where
 * IndexedDB cannot be opened at all the same store runs on a Map for the life of the page.
 */
import { createStore, delMany, getMany, keys, setMany } from 'idb-keyval';
import type { ConversationEntry } from '../conversation';
import { messageText } from '../conversation';

export interface ConversationSummary {
  id: string;
  title: string;
  /** The model of the latest reply (catalog id); null before any. */
  model: string | null;
  /** Milliseconds since the epoch. */
  createdAt: number;
  updatedAt: number;
  /** A reply was being written when this was saved. */
  writing: boolean;
}

export interface ConversationRecord extends ConversationSummary {
  entries: ConversationEntry[];
}

/** The few IndexedDB operations the store needs: idb-keyval's, or a Map's. */
export interface KeyValueBackend {
  keys(): Promise<string[]>;
  getMany(keys: readonly string[]): Promise<unknown[]>;
  /** Writes every entry or none (one transaction). */
  setMany(entries: readonly (readonly [string, unknown])[]): Promise<void>;
  delMany(keys: readonly string[]): Promise<void>;
}

export interface StoreLimits {
  /** Conversations kept; a new one past this is not saved until one is deleted. */
  maxConversations: number;
  /** Characters of a conversation's JSON (about its bytes for ASCII text). */
  maxConversationChars: number;
  /** Characters of a title, from the first message or a rename. */
  maxTitleChars: number;
}

export const DEFAULT_LIMITS: StoreLimits = { maxConversations: 200, maxConversationChars: 2_000_000, maxTitleChars: 80 };

export type StoreProblemKind = 'unavailable' | 'quota' | 'full' | 'too-large' | 'failed';

/** Why something could not be saved, said for the person using the page. */
export interface StoreProblem {
  kind: StoreProblemKind;
  message: string;
}

const SUMMARY = 'summary:';
const ENTRIES = 'entries:';

export function idbBackend(): KeyValueBackend {
  const store = createStore('webgpu-llm-chat', 'conversations');
  return {
    keys: async () => (await keys(store)).filter((key): key is string => typeof key === 'string'),
    getMany: (list) => getMany([...list], store),
    setMany: (entries) => setMany(entries.map(([key, value]) => [key, value]), store),
    delMany: (list) => delMany([...list], store),
  };
}

/** Kept for the life of the page only: where IndexedDB is missing, and in tests. */
export function memoryBackend(): KeyValueBackend {
  const map = new Map<string, unknown>();
  return {
    keys: async () => [...map.keys()],
    getMany: async (list) => list.map((key) => structuredClone(map.get(key))),
    setMany: async (entries) => {
      for (const [key, value] of entries) map.set(key, structuredClone(value));
    },
    delMany: async (list) => {
      for (const key of list) map.delete(key);
    },
  };
}

/** A title as given for a rename: whitespace collapsed, cut to `max` characters; '' where none is left. */
export function cleanTitle(title: string, max = DEFAULT_LIMITS.maxTitleChars): string {
  return title.replace(/\s+/g, ' ').trim().slice(0, max);
}

/** A conversation's title from its first user message: whitespace collapsed, cut to `max` characters. */
export function titleFrom(entries: readonly ConversationEntry[], max = DEFAULT_LIMITS.maxTitleChars): string {
  const first = entries.find((entry) => entry.message.role === 'user');
  const text = (first ? messageText(first.message) : '').replace(/\s+/g, ' ').trim();
  if (!text) return 'New conversation';
  return text.length > max ? `${text.slice(0, max - 1).trimEnd()}…` : text;
}

/** A record left `writing` (the page closed mid-reply): the same with its last reply marked interrupted. */
export function markInterrupted(record: ConversationRecord): ConversationRecord {
  if (!record.writing) return record;
  const entries = record.entries.map((entry) => ({ ...entry }));
  const last = entries.at(-1);
  if (last?.message.role === 'assistant') last.ending = 'interrupted';
  return { ...record, entries, writing: false };
}

export function newConversationId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function isSummary(value: unknown): value is ConversationSummary {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.id === 'string' && typeof v.title === 'string' && typeof v.createdAt === 'number' && typeof v.updatedAt === 'number';
}

function describeFailure(error: unknown, doing: string): StoreProblem {
  const name = error instanceof Error || error instanceof DOMException ? error.name : '';
  if (name === 'QuotaExceededError') {
    return { kind: 'quota', message: `Could not ${doing}: this browser's storage for the site is full. Delete old conversations or cached models.` };
  }
  const why = error instanceof Error ? error.message : String(error);
  return { kind: 'failed', message: `Could not ${doing}: ${why}` };
}

export class ConversationStore {
  /** Ids stored, loaded on first use: the count limit is checked without reading the store on every save. */
  private known: Promise<Set<string>> | undefined;
  /** Deleted in this page: a late save (a reply's last write) must not bring one back. */
  private readonly deleted = new Set<string>();
  /** Writes run one after another, in the order they were asked. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly backend: KeyValueBackend,
    private readonly onProblem: (problem: StoreProblem) => void = () => {},
    readonly limits: StoreLimits = DEFAULT_LIMITS,
    /** False where IndexedDB was unavailable and conversations last only as long as the page. */
    readonly persistent = true,
  ) {}

  private ids(): Promise<Set<string>> {
    // A failed read is forgotten, so the next call reads again rather than failing for the page's life.
    this.known ??= this.backend
      .keys()
      .then((all) => new Set(all.filter((k) => k.startsWith(SUMMARY)).map((k) => k.slice(SUMMARY.length))))
      .catch((error: unknown) => {
        this.known = undefined;
        throw error;
      });
    return this.known;
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => {});
    return run;
  }

  /** Every conversation, the latest first; [] (and a problem reported) where the store cannot be read. */
  async list(): Promise<ConversationSummary[]> {
    try {
      const ids = [...(await this.ids())];
      const summaries = await this.backend.getMany(ids.map((id) => SUMMARY + id));
      return summaries.filter(isSummary).sort((a, b) => b.updatedAt - a.updatedAt);
    } catch (error) {
      this.onProblem(describeFailure(error, 'read the saved conversations'));
      return [];
    }
  }

  /**
   * The conversation, or null where there is none (or it cannot be read). One cut off mid-reply comes back
   * with that reply marked interrupted, and is saved so.
   */
  async open(id: string): Promise<ConversationRecord | null> {
    try {
      const [summary, entries] = await this.backend.getMany([SUMMARY + id, ENTRIES + id]);
      if (!isSummary(summary) || !Array.isArray(entries)) return null;
      const record: ConversationRecord = { ...summary, entries: entries as ConversationEntry[] };
      if (!record.writing) return record;
      const marked = markInterrupted(record);
      await this.save(marked);
      return marked;
    } catch (error) {
      this.onProblem(describeFailure(error, 'open the conversation'));
      return null;
    }
  }

  /** Saves the whole conversation; false (and the problem reported) where it was not saved. */
  save(record: ConversationRecord): Promise<boolean> {
    return this.serial(async () => {
      if (this.deleted.has(record.id)) return false;
      try {
        const size = JSON.stringify(record.entries).length;
        if (size > this.limits.maxConversationChars) {
          this.onProblem({
            kind: 'too-large',
            message: `This conversation is too long to save (${size} characters, at most ${this.limits.maxConversationChars}); what was saved before stays, the rest lasts until the page closes.`,
          });
          return false;
        }
        const ids = await this.ids();
        if (!ids.has(record.id) && ids.size >= this.limits.maxConversations) {
          this.onProblem({
            kind: 'full',
            message: `${ids.size} conversations are saved, the most kept: delete some to save new ones. This one lasts until the page closes.`,
          });
          return false;
        }
        const { entries, ...summary } = record;
        await this.backend.setMany([
          [SUMMARY + record.id, summary],
          [ENTRIES + record.id, entries],
        ]);
        ids.add(record.id);
        return true;
      } catch (error) {
        this.onProblem(describeFailure(error, 'save the conversation'));
        return false;
      }
    });
  }

  /** Gives the conversation a new title (whitespace collapsed, cut to the limit) and returns it; null where it was not renamed. */
  rename(id: string, title: string): Promise<string | null> {
    const clean = cleanTitle(title, this.limits.maxTitleChars);
    if (!clean) return Promise.resolve(null);
    return this.serial(async () => {
      try {
        const [summary] = await this.backend.getMany([SUMMARY + id]);
        if (!isSummary(summary) || this.deleted.has(id)) return null;
        await this.backend.setMany([[SUMMARY + id, { ...summary, title: clean }]]);
        return clean;
      } catch (error) {
        this.onProblem(describeFailure(error, 'rename the conversation'));
        return null;
      }
    });
  }

  /** Deletes the conversation for good, after any save already asked; false where it could not be. */
  remove(id: string): Promise<boolean> {
    this.deleted.add(id);
    return this.serial(async () => {
      try {
        await this.backend.delMany([SUMMARY + id, ENTRIES + id]);
        (await this.ids()).delete(id);
        return true;
      } catch (error) {
        this.onProblem(describeFailure(error, 'delete the conversation'));
        return false;
      }
    });
  }
}

/**
 * The store on IndexedDB, or where that cannot be opened (a private window of some browsers, storage
 * switched off) on memory, with the problem reported.
 */
export async function openConversationStore(onProblem: (problem: StoreProblem) => void, limits = DEFAULT_LIMITS): Promise<ConversationStore> {
  try {
    if (typeof indexedDB === 'undefined') throw new Error('this browser has no IndexedDB');
    const backend = idbBackend();
    await backend.keys();
    return new ConversationStore(backend, onProblem, limits);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    onProblem({ kind: 'unavailable', message: `Conversations cannot be saved in this browser (${why}); they last until the page closes.` });
    return new ConversationStore(memoryBackend(), onProblem, limits, false);
  }
}

/**
 * Saves a streaming reply at most once per `intervalMs` (the latest state wins), and at once on `flush`:
 * a page closed mid-reply loses at most that much text.
 */
export class ThrottledSaver {
  private pending: ConversationRecord | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lastSave = -Infinity;

  constructor(
    private readonly save: (record: ConversationRecord) => Promise<unknown>,
    private readonly intervalMs = 500,
    private readonly now: () => number = () => Date.now(),
  ) {}

  update(record: ConversationRecord): void {
    this.pending = record;
    if (this.timer !== undefined) return;
    const wait = Math.max(0, this.lastSave + this.intervalMs - this.now());
    this.timer = setTimeout(() => void this.flush(), wait);
  }

  /** Saves what is pending now (if anything) and settles when that save has. */
  async flush(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const record = this.pending;
    this.pending = undefined;
    if (!record) return;
    this.lastSave = this.now();
    await this.save(record);
  }

  /** Drops what is pending (the conversation is being deleted). */
  cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = undefined;
  }
}
