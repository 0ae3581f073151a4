/**
 * The chat page: model picker (with what is cached), download progress, streaming replies, Stop, New chat,
 * sampling settings, JSON mode and tools, live speed, and error banners that say what to do. Conversations
 * are saved in IndexedDB as they go (a streaming reply every half second, see history.ts), listed in a
 * side panel to reopen, rename or delete, and the last turn can be edited and sent again or regenerated. The engine runs in a worker; the
 * page keeps the conversation, so a lost GPU device costs a model reload, not the chat. The backend is
 * `?backend=` (auto by default: WebGPU on a hardware adapter, else the CPU path); where the page has no
 * WebGPU at all, only the CPU path is tried, and the status line says which runs and why.
 *
 * The state is mirrored to `window.__chat` so a headless browser can wait for it, read it and drive the
 * engine directly (the tests compare what the page streamed with a direct request).
 */
import type { ChatCompletionMessageParam, ChatFinishReason, Timings, Usage } from '../../engine/types';
import { InvalidRequestError } from '../../chat/messages';
import type { Tool } from '../../chat/tools';
import { describeError, type ErrorKind } from '../../errors';
import type { BackendRequest } from '../../engine/backend';
import { GgufError } from '../../formats/gguf';
import { checkWebGpu } from '../../gpu/device';
import { WebGPUUnavailableError } from '../../gpu/errors';
import { WasmBackendError } from '../../wasm/errors';
import { deleteCachedModel } from '../../storage';
import type { ChatEngine } from '../../worker/chat-engine';
import { createWorkerEngine } from '../../worker/client';
import type { EngineInfo, LoadProgress } from '../../worker/protocol';
import { spawnEngineWorker } from '../../worker/spawn';
import { Conversation, messageText, type Bubbles, type ConversationEntry, type TurnOutcome, type TurnRequest } from '../conversation';
import { h } from '../dom';
import { formatBytes, formatSeconds } from '../format';
import { createMessageList, type MessageRole, type MessageView } from '../messages';
import { customEntry, loadCatalog, refreshCached, saveCustom, type Catalog, type DtypeChoice, type ModelEntry } from './catalog';
import {
  cleanTitle,
  newConversationId,
  openConversationStore,
  ThrottledSaver,
  titleFrom,
  type ConversationRecord,
  type ConversationStore,
  type ConversationSummary,
  type StoreProblem,
} from './history';
import { hfTokenField, storedHfToken } from './hf-token';
import { loadSettings, mountSettings, settingsTools } from './settings';

export type ChatStatus = 'starting' | 'idle' | 'loading' | 'ready' | 'generating' | 'error';

export interface ChatPageState {
  status: ChatStatus;
  /** The model loaded (or being loaded), by catalog id. */
  modelId: string | null;
  info: EngineInfo | null;
  progressEvents: number;
  /** The last download progress event of the current load; null when nothing was downloaded. */
  lastDownload: LoadProgress | null;
  /**
   * When the current load's stages ran: milliseconds from its start to each stage's first and last progress
   * event ('download', or the load's 'read', 'upload', 'quantize', 'compile'), to ready, and to every kernel
   * compiled (the kernels for long prompts compile after ready; a reply that needs them waits).
   */
  loadTimeline: { stages: Record<string, { first: number; last: number }>; readyMs: number | null; compiledMs: number | null };
  /** The conversation as sent to the engine (without the system prompt). */
  readonly messages: readonly ChatCompletionMessageParam[];
  readonly lastRequest: TurnRequest | null;
  lastFinishReason: ChatFinishReason | null;
  lastTimings: Timings | null;
  lastUsage: Usage | null;
  error: { name: string; message: string; kind: ErrorKind } | null;
  engine: ChatEngine | null;
  /** The saved conversation on screen; null for a new one not yet saved. */
  conversationId: string | null;
  /** Saves that reached the store, counted so a test can wait for a streaming reply to be saved. */
  saves: number;
  /** The latest reason conversations could not be saved (IndexedDB missing, quota, limits). */
  storageProblem: StoreProblem | null;
  /** Shows `text` as an assistant reply, through the same renderer as model output (tests feed it hostile text). */
  showAssistantMessage(text: string): void;
}

declare global {
  interface Window {
    __chat?: ChatPageState;
  }
}

const LAST_MODEL_KEY = 'webgpu-llm:last-model';
/** The conversation on screen, reopened after a reload. */
const CONVERSATION_KEY = 'webgpu-llm:conversation';
/** A streaming reply is saved at most this often, so a page closed mid-reply loses at most this much of it. */
const SAVE_INTERVAL_MS = 500;
/** The stats line's end while the kernels for long prompts compile after ready. */
const COMPILING_NOTE = ' · compiling the kernels for long prompts';

function requestedBackend(): BackendRequest {
  const asked = new URLSearchParams(location.search).get('backend');
  return asked === 'webgpu' || asked === 'wasm' ? asked : 'auto';
}

/** Why this page has no WebGPU, or null where it has. */
function missingWebGpu(): WebGPUUnavailableError | null {
  try {
    checkWebGpu();
    return null;
  } catch (e) {
    if (e instanceof WebGPUUnavailableError) return e;
    throw e;
  }
}

export async function mountChat(root: HTMLElement): Promise<ChatPageState> {
  const messages = createMessageList();
  // The bubbles of the conversation in order, one per entry, so each can get its actions (copy, edit, regenerate).
  const shown: { role: MessageRole; view: MessageView }[] = [];
  const bubbles: Bubbles = {
    append(role, text, initial) {
      const view = messages.append(role, text, initial);
      const item = { role, view };
      shown.push(item);
      return {
        setText: view.setText,
        setToolCalls: view.setToolCalls,
        finish: view.finish,
        remove() {
          view.remove();
          shown.splice(shown.indexOf(item), 1);
        },
      };
    },
    clear() {
      shown.length = 0;
      messages.clear();
    },
  };
  const conversation = new Conversation(bubbles);
  const state: ChatPageState = {
    status: 'starting',
    modelId: null,
    info: null,
    progressEvents: 0,
    lastDownload: null,
    loadTimeline: { stages: {}, readyMs: null, compiledMs: null },
    get messages() {
      return conversation.messages;
    },
    get lastRequest() {
      return conversation.lastRequest;
    },
    lastFinishReason: null,
    lastTimings: null,
    lastUsage: null,
    error: null,
    engine: null,
    conversationId: null,
    saves: 0,
    storageProblem: null,
    showAssistantMessage: (text) => messages.append('assistant', text).finish('done'),
  };
  window.__chat = state;

  // ---- layout ----
  const modelSelect = h('select', { id: 'model', 'aria-label': 'Model' });
  const dtypeSelect = h('select', { id: 'dtype', 'aria-label': 'Weight type on the GPU', title: 'Weight type on the GPU' });
  const loadButton = h('button', { type: 'button', class: 'load' }, 'Load');
  const modelMeta = h('div', { class: 'model-meta' });
  const banners = h('div', { class: 'banners', role: 'alert' });
  const progressText = h('span', { class: 'progress-text' });
  const progressBar = h('progress', { max: '1', value: '0' });
  const cancelButton = h('button', { type: 'button', class: 'cancel' }, 'Cancel');
  const progress = h('div', { class: 'progress', hidden: true }, progressText, cancelButton, progressBar);
  const notice = h('p', { class: 'notice', hidden: true });
  const stats = h('div', { class: 'stats', 'aria-live': 'off' });
  const input = h('textarea', { rows: '1', placeholder: 'Message (Enter to send, Shift+Enter for a new line)', 'aria-label': 'Message' });
  const sendButton = h('button', { type: 'submit', class: 'send' }, 'Send');
  const stopButton = h('button', { type: 'button', class: 'stop', hidden: true }, 'Stop');
  const newChatButton = h('button', { type: 'button', class: 'new-chat' }, 'New chat');
  const cancelEditButton = h('button', { type: 'button', class: 'cancel-edit' }, 'Cancel edit');
  const editNote = h('p', { class: 'edit-note', hidden: true, id: 'edit-note' }, 'Editing your last message: Send replaces it and its reply; Escape cancels. ', cancelEditButton);
  const composer = h('form', { class: 'composer' }, editNote, input, h('div', { class: 'actions' }, newChatButton, stopButton, sendButton));
  const conversationList = h('ul', { class: 'conversation-list', 'aria-label': 'Saved conversations' });
  const storageNote = h('p', { class: 'hint storage-problem', role: 'status', hidden: true });
  const conversationsPanel = h(
    'details',
    { class: 'panel conversations' },
    h('summary', {}, 'Conversations'),
    storageNote,
    conversationList,
  );
  const cachedList = h('ul', { class: 'cached' });
  const urlInput = h('input', { type: 'url', placeholder: 'https://huggingface.co/org/repo', 'aria-label': 'Hugging Face repo URL' });
  const addForm = h('form', { class: 'add-model' }, urlInput, h('button', { type: 'submit' }, 'Add'));
  const settingsPanel = h('details', { class: 'panel settings' }, h('summary', {}, 'Settings'));
  const modelsPanel = h(
    'details',
    { class: 'panel models' },
    h('summary', {}, 'Models'),
    h('p', { class: 'hint' }, 'Downloaded models are kept in this browser (IndexedDB) and load without network.'),
    cachedList,
    h('p', { class: 'hint' }, 'Any Hugging Face repo with safetensors weights (Llama, Qwen2/3, Mistral, Gemma 3, Phi-3/4, SmolLM3, GPT-2 architectures):'),
    addForm,
    hfTokenField(),
  );
  // Side panels are open where there is room for them beside the chat, and folded above it on phones.
  const wide = matchMedia('(min-width: 900px)');
  const foldPanels = () => {
    conversationsPanel.open = wide.matches;
    settingsPanel.open = wide.matches;
    modelsPanel.open = wide.matches;
  };
  foldPanels();
  wide.addEventListener('change', foldPanels);
  const settings = loadSettings();
  mountSettings(settingsPanel, settings);

  root.replaceChildren(
    h(
      'header',
      { class: 'topbar' },
      h('div', { class: 'brand' }, h('img', { src: 'icons/icon.svg', alt: '', width: '28', height: '28' }), h('h1', {}, 'webgpu-llm')),
      h('div', { class: 'model-bar' }, modelSelect, dtypeSelect, loadButton),
      modelMeta,
    ),
    banners,
    progress,
    h(
      'main',
      { class: 'layout' },
      h('section', { class: 'chat' }, notice, messages.element, stats, composer),
      h('aside', { class: 'side' }, conversationsPanel, settingsPanel, modelsPanel),
    ),
  );

  // ---- state ----
  let catalog: Catalog = { entries: [], cached: new Map(), defaultId: undefined };
  let engine: ChatEngine | null = null;
  /** Whether the engine's kernels for long prompts are still compiling (see ChatEngine.whenCompiled). */
  let compiling = false;
  let loadedEntry: { entry: ModelEntry; dtype: DtypeChoice } | null = null;
  let loadController: AbortController | undefined;
  /** performance.now() when the current load started (the timeline's zero). */
  let loadStart = 0;
  let store: ConversationStore | null = null;
  /** The conversation on screen as saved: null until its first message. `title` is set once renamed. */
  let current: { id: string; createdAt: number; title: string | null; model: string | null } | null = null;
  /** The turn being written, so switching conversations can stop it and let it save first. */
  let turn: Promise<void> | undefined;
  let editing = false;

  const saver = new ThrottledSaver(async (record) => {
    if (!(await store?.save(record))) return;
    state.saves++;
    // Saving works again (a conversation deleted, space freed): the earlier problem no longer holds.
    if (store?.persistent) reportStorageProblem(null);
  }, SAVE_INTERVAL_MS);

  function record(entries: readonly ConversationEntry[], writing: boolean): ConversationRecord | null {
    if (!current) return null;
    const { id, createdAt, title, model } = current;
    return { id, createdAt, model, title: title ?? titleFrom(entries), updatedAt: Date.now(), writing, entries: [...entries] };
  }

  function setCurrent(next: typeof current): void {
    current = next;
    state.conversationId = next?.id ?? null;
    if (next) localStorage.setItem(CONVERSATION_KEY, next.id);
    else localStorage.removeItem(CONVERSATION_KEY);
  }

  function reportStorageProblem(problem: StoreProblem | null): void {
    state.storageProblem = problem;
    storageNote.hidden = !problem;
    storageNote.textContent = problem?.message ?? '';
  }

  function setStatus(status: ChatStatus): void {
    state.status = status;
    root.dataset.status = status;
    const busy = status === 'generating';
    sendButton.disabled = status !== 'ready';
    stopButton.hidden = !busy;
    sendButton.hidden = busy;
    loadButton.disabled = status === 'starting';
    renderActions();
  }

  function actionButton(label: string, name: string, onClick: (button: HTMLButtonElement) => void): HTMLButtonElement {
    const button = h('button', { type: 'button', class: name }, label);
    button.addEventListener('click', () => onClick(button));
    return button;
  }

  /** Copy on every finished reply; Edit on the last message and Regenerate on the last reply while the model is ready. */
  function renderActions(): void {
    for (const { view } of shown) view.element.querySelector(':scope > .message-actions')?.remove();
    if (conversation.busy || state.status === 'generating') return;
    const entries = conversation.entries;
    const ready = state.status === 'ready';
    let lastUser = entries.length - 1;
    while (lastUser >= 0 && entries[lastUser].message.role !== 'user') lastUser--;
    shown.forEach(({ role, view }, i) => {
      const entry = entries[i];
      if (!entry) return;
      const buttons: HTMLButtonElement[] = [];
      if (role === 'assistant') {
        buttons.push(actionButton('Copy', 'copy', (button) => void copyReply(entry, button)));
        if (ready && i === entries.length - 1 && i === lastUser + 1) buttons.push(actionButton('Regenerate', 'regenerate', regenerate));
      } else if (i === lastUser) {
        buttons.push(actionButton('Edit', 'edit', () => startEditing(messageText(entry.message))));
      }
      if (buttons.length) view.element.append(h('div', { class: 'message-actions', role: 'group', 'aria-label': `${role === 'user' ? 'Message' : 'Reply'} actions` }, ...buttons));
    });
  }

  async function copyReply(entry: ConversationEntry, button: HTMLButtonElement): Promise<void> {
    const text = messageText(entry.message) || JSON.stringify(entry.message.tool_calls ?? [], null, 2);
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = 'Copied';
    } catch (e) {
      button.textContent = 'Copy failed';
      button.title = e instanceof Error ? e.message : String(e);
    }
    setTimeout(() => {
      button.textContent = 'Copy';
      button.removeAttribute('title');
    }, 1500);
  }

  function startEditing(text: string): void {
    editing = true;
    editNote.hidden = false;
    input.setAttribute('aria-describedby', editNote.id);
    input.value = text;
    resizeInput();
    input.focus();
  }

  function stopEditing(): void {
    if (!editing) return;
    editing = false;
    editNote.hidden = true;
    input.removeAttribute('aria-describedby');
  }

  /** Leaves the edit without sending: the text being edited goes from the input box. */
  function cancelEditing(): void {
    if (!editing) return;
    stopEditing();
    input.value = '';
    resizeInput();
  }

  function regenerate(): void {
    const tools = turnTools();
    if (state.status !== 'ready' || conversation.busy || tools === undefined) return;
    const text = conversation.takeBackLastTurn();
    if (text !== null) void send(text, tools);
  }

  /** Stops the reply being written and waits until it has been saved, before the conversation on screen changes. */
  async function settleTurn(): Promise<void> {
    conversation.stop();
    await turn;
  }

  async function renderConversationList(): Promise<void> {
    const summaries = (await store?.list()) ?? [];
    conversationList.replaceChildren(
      ...(summaries.length ? summaries.map(conversationRow) : [h('li', { class: 'empty' }, 'No saved conversations yet.')]),
    );
  }

  function conversationRow(summary: ConversationSummary): HTMLLIElement {
    const when = new Date(summary.updatedAt);
    const model = summary.model ? (entryById(summary.model)?.name ?? summary.model) : 'no model yet';
    const open = h(
      'button',
      { type: 'button', class: 'open', 'data-id': summary.id },
      h('span', { class: 'title' }, summary.title),
      h('span', { class: 'meta' }, h('time', { datetime: when.toISOString() }, when.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })), ` · ${model}`),
    );
    const isCurrent = summary.id === current?.id;
    if (isCurrent) open.setAttribute('aria-current', 'true');
    const rename = h('button', { type: 'button', class: 'rename', 'aria-label': `Rename “${summary.title}”` }, 'Rename');
    const remove = h('button', { type: 'button', class: 'delete', 'aria-label': `Delete “${summary.title}”` }, 'Delete');
    const row = h('li', { 'data-id': summary.id }, open, h('span', { class: 'row-actions' }, rename, remove));
    open.addEventListener('click', () => void openConversation(summary.id));
    rename.addEventListener('click', () => row.replaceChildren(renameForm(summary)));
    remove.addEventListener('click', () => void deleteConversation(summary));
    return row;
  }

  function renameForm(summary: ConversationSummary): HTMLFormElement {
    const field = h('input', { type: 'text', name: 'title', 'aria-label': 'New title', maxlength: String(store?.limits.maxTitleChars ?? 80), required: true });
    field.value = summary.title;
    const cancel = h('button', { type: 'button', class: 'cancel' }, 'Cancel');
    const form = h('form', { class: 'rename-form' }, field, h('button', { type: 'submit' }, 'Save'), cancel);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      // The conversation on screen takes the title before the store's write, so a reply's save queued
      // meanwhile carries it rather than writing the old one back.
      const onScreen = current?.id === summary.id;
      const previous = current?.title ?? null;
      const title = cleanTitle(field.value, store?.limits.maxTitleChars);
      if (onScreen && current && title) current.title = title;
      const renamed = await store?.rename(summary.id, field.value);
      if (onScreen && current?.id === summary.id) current.title = renamed ?? previous;
      await renderConversationList();
    });
    cancel.addEventListener('click', () => void renderConversationList());
    field.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') void renderConversationList();
    });
    queueMicrotask(() => {
      field.focus();
      field.select();
    });
    return form;
  }

  async function openConversation(id: string): Promise<void> {
    if (id === current?.id && !conversation.busy) return;
    await settleTurn();
    const saved = await store?.open(id);
    // A message sent while the store was read belongs to the conversation on screen: that one stays.
    if (conversation.busy || state.status === 'generating') return;
    if (!saved) {
      await renderConversationList();
      return;
    }
    cancelEditing();
    conversation.restore(saved.entries);
    clearBanner('context');
    setCurrent({ id: saved.id, createdAt: saved.createdAt, title: saved.title === titleFrom(saved.entries) ? null : saved.title, model: saved.model });
    renderActions();
    await renderConversationList();
  }

  async function deleteConversation(summary: ConversationSummary): Promise<void> {
    if (!confirm(`Delete “${summary.title}” for good?`)) return;
    if (summary.id === current?.id) {
      await settleTurn();
      saver.cancel();
      startNewChat();
    }
    await store?.remove(summary.id);
    await renderConversationList();
  }

  function clearBanner(kind?: ErrorKind): void {
    for (const banner of banners.querySelectorAll<HTMLElement>('.banner')) if (!kind || banner.dataset.kind === kind) banner.remove();
  }

  function showError(error: unknown): void {
    const description = describeError(error);
    state.error = { name: error instanceof Error ? error.name : 'Error', message: description.detail, kind: description.kind };
    clearBanner(description.kind);
    const dismiss = h('button', { type: 'button', class: 'dismiss', 'aria-label': 'Dismiss' }, '×');
    const banner = h(
      'div',
      { class: `banner ${description.kind}`, 'data-kind': description.kind },
      h('strong', {}, description.title),
      h('p', { class: 'detail' }, description.detail),
      description.hint && h('p', { class: 'hint' }, description.hint),
      dismiss,
    );
    dismiss.addEventListener('click', () => banner.remove());
    if (description.kind === 'device-lost' && loadedEntry) {
      const again = loadedEntry;
      const reload = h('button', { type: 'button', class: 'reload' }, 'Reload model');
      reload.addEventListener('click', () => void load(again.entry, again.dtype));
      banner.append(reload);
    }
    if (description.kind === 'context') {
      const restart = h('button', { type: 'button', class: 'restart' }, 'New chat');
      restart.addEventListener('click', () => void newChat());
      banner.append(restart);
    }
    banners.append(banner);
  }

  function entryById(id: string): ModelEntry | undefined {
    return catalog.entries.find((e) => e.id === id);
  }

  function selectedEntry(): ModelEntry | undefined {
    return entryById(modelSelect.value);
  }

  function cacheLabel(entry: ModelEntry): string {
    const cached = catalog.cached.get(entry.id);
    if (cached?.complete) return 'cached';
    if (cached) return `${formatBytes(cached.totalBytes)} downloaded`;
    if (entry.origin === 'local') return 'local folder';
    if (!entry.approxBytes) return 'not downloaded';
    const stored = entry.checkpointDtype ? ` (${entry.checkpointDtype})` : '';
    return `~${formatBytes(entry.approxBytes)} download${stored}${entry.gated ? ', gated: needs a Hugging Face access token' : ''}`;
  }

  function renderModelOptions(): void {
    const selected = modelSelect.value;
    modelSelect.replaceChildren(...catalog.entries.map((e) => h('option', { value: e.id }, `${e.name} · ${cacheLabel(e)}`)));
    if (selected && entryById(selected)) modelSelect.value = selected;
    renderDtypes();
    renderCachedList();
  }

  function renderDtypes(): void {
    const entry = selectedEntry();
    dtypeSelect.replaceChildren(...(entry?.dtypes ?? ['auto']).map((d) => h('option', { value: d }, d === 'auto' ? 'as stored' : d)));
    modelMeta.textContent = entry ? `${cacheLabel(entry)}${entry.contextLength ? ` · context ${entry.contextLength}` : ''}` : '';
  }

  function renderCachedList(): void {
    const rows = [...catalog.cached.values()].map((model) => {
      const remove = h('button', { type: 'button', class: 'delete', 'data-model': model.modelId }, 'Delete');
      remove.addEventListener('click', async () => {
        remove.disabled = true;
        try {
          await deleteCachedModel(model.modelId);
        } catch (e) {
          showError(e);
        }
        catalog.cached = await refreshCached();
        renderModelOptions();
      });
      const name = entryById(model.modelId)?.name ?? model.modelId;
      return h('li', {}, h('span', { class: 'name' }, name), h('span', { class: 'size' }, `${formatBytes(model.totalBytes)}${model.complete ? '' : ' (partial)'}`), remove);
    });
    cachedList.replaceChildren(...(rows.length ? rows : [h('li', { class: 'empty' }, 'No models downloaded yet.')]));
  }

  function showProgress(p: LoadProgress): void {
    state.progressEvents++;
    const at = performance.now() - loadStart;
    const stage = (state.loadTimeline.stages[p.phase === 'download' ? 'download' : p.stage] ??= { first: at, last: at });
    stage.last = at;
    // Slices are uploaded (and quantized) as they are read: the read stage's bytes carry the bar.
    if (p.phase === 'load' && (p.stage === 'upload' || p.stage === 'quantize')) return;
    if (p.phase === 'download') state.lastDownload = p;
    progress.hidden = false;
    progressBar.value = p.total > 0 ? p.loaded / p.total : 0;
    progressText.textContent =
      p.phase === 'download'
        ? `Downloading ${p.file}: ${formatBytes(p.loaded)} of ${formatBytes(p.total)} · ${formatBytes(p.bytesPerSecond)}/s · ${formatSeconds(p.etaSeconds)} left`
        : p.stage === 'compile'
          ? `Preparing the GPU kernels: step ${p.loaded} of ${p.total}`
          : `Loading weights onto the GPU: ${formatBytes(p.loaded)} of ${formatBytes(p.total)}`;
  }

  /** The stats line of a loaded model; `compiling` while the kernels for long prompts still compile. */
  function infoLine(info: EngineInfo, compiling: boolean): string {
    const why = { memory: ' (what fits in memory)', default: ' (the default)', model: '', requested: '' }[info.contextLimitedBy];
    const { backend, reason, device } = info.backend;
    const runsOn = backend === 'wasm' ? `CPU (${device}; ${reason})` : `WebGPU on ${device || 'the GPU'}${reason === 'hardware adapter' ? '' : ` (${reason})`}`;
    return `${info.modelId} ready · context ${info.contextLength} tokens${why} · ${runsOn}${compiling && backend === 'webgpu' ? COMPILING_NOTE : ''}`;
  }

  /** Takes the compiling note off the stats line, if the line still has it (a reply writes its own). */
  function dropCompilingNote(): void {
    const line = stats.textContent ?? '';
    if (line.endsWith(COMPILING_NOTE)) stats.textContent = line.slice(0, -COMPILING_NOTE.length);
  }

  function showInfo(info: EngineInfo, compiling: boolean): void {
    notice.hidden = !info.usesFallbackTemplate;
    notice.textContent = info.usesFallbackTemplate
      ? `${info.modelId} has no chat template, so it is prompted with a plain “User:/Assistant:” transcript (${info.chatTemplate}). ` +
        'Base models continue text rather than answer: try the start of a story, e.g. “Once upon a time”.'
      : '';
    stats.textContent = infoLine(info, compiling);
  }

  async function load(entry: ModelEntry, dtype: DtypeChoice): Promise<void> {
    loadController?.abort();
    conversation.stop();
    const controller = new AbortController();
    loadController = controller;
    const previous = engine;
    engine = null;
    state.engine = null;
    await previous?.dispose().catch(() => {});
    clearBanner();
    state.error = null;
    state.modelId = entry.id;
    state.info = null;
    state.progressEvents = 0;
    state.lastDownload = null;
    state.loadTimeline = { stages: {}, readyMs: null, compiledMs: null };
    compiling = false;
    loadStart = performance.now();
    loadedEntry = { entry, dtype };
    setStatus('loading');
    progressText.textContent = `Starting ${entry.name}…`;
    progressBar.removeAttribute('value');
    progress.hidden = false;
    const noWebGpu = missingWebGpu();
    try {
      const loaded = await createWorkerEngine(new URL(entry.source, document.baseURI).href, {
        worker: spawnEngineWorker(),
        modelId: entry.id,
        dtype: dtype === 'auto' ? undefined : dtype,
        contextLength: entry.contextLength,
        // A worker may see WebGPU where its page does not: the page's word counts.
        backend: noWebGpu ? 'wasm' : requestedBackend(),
        hfToken: storedHfToken(),
        onProgress: (p) => {
          if (loadController === controller) showProgress(p);
        },
        signal: controller.signal,
      });
      if (loadController !== controller) return void loaded.dispose();
      engine = loaded;
      state.engine = loaded;
      state.info = loaded.info;
      localStorage.setItem(LAST_MODEL_KEY, entry.id);
      showInfo(loaded.info, true);
      state.loadTimeline.readyMs = performance.now() - loadStart;
      setStatus('ready');
      compiling = true;
      void loaded.whenCompiled().then(
        () => {
          if (engine !== loaded) return;
          compiling = false;
          state.loadTimeline.compiledMs = performance.now() - loadStart;
          dropCompilingNote();
        },
        (error: unknown) => {
          // A disposed engine needs nothing; a failed compile is shown, and a request that needs it fails with it.
          if (engine !== loaded) return;
          compiling = false;
          dropCompilingNote();
          showError(error);
        },
      );
      void loaded.lost.then((error) => {
        if (engine !== loaded) return;
        engine = null;
        state.engine = null;
        conversation.stop();
        // The engine cannot be used again; its worker goes, the conversation stays for the reload.
        void loaded.dispose().catch(() => {});
        setStatus('error');
        showError(error);
      });
    } catch (e) {
      if (loadController !== controller) return;
      setStatus('error');
      if (e instanceof DOMException && e.name === 'AbortError') stats.textContent = 'Loading cancelled.';
      else if (noWebGpu && (e instanceof WasmBackendError || e instanceof GgufError)) {
        // Without WebGPU the CPU path was the only way: say how to get WebGPU, and why the CPU path failed.
        showError(new WebGPUUnavailableError(`${noWebGpu.reason}, and the CPU (WebAssembly) path failed: ${e.message}`));
      } else showError(e);
    } finally {
      if (loadController === controller) {
        progress.hidden = true;
        loadController = undefined;
      }
      catalog.cached = await refreshCached();
      renderModelOptions();
    }
  }

  function showStats(parts: string[]): void {
    stats.textContent = parts.join(' · ');
  }

  /** The tools of Settings; undefined (and the error shown) when the field does not hold valid tools. */
  function turnTools(): Tool[] | null | undefined {
    try {
      return settingsTools(settings);
    } catch (e) {
      showError(e instanceof SyntaxError ? new InvalidRequestError(`The tools in Settings are not valid JSON: ${e.message}`, 'tools') : e);
      return undefined;
    }
  }

  function send(text: string, tools: Tool[] | null): Promise<void> {
    const running = runTurn(text, tools);
    turn = running;
    return running;
  }

  async function runTurn(text: string, tools: Tool[] | null): Promise<void> {
    const turnEngine = engine;
    if (!turnEngine || state.status !== 'ready' || !text.trim()) return;
    setStatus('generating');
    clearBanner('context');
    let pieces = 0;
    const start = performance.now();
    let firstAt: number | undefined;
    const turnSettings = {
      systemPrompt: settings.systemPrompt,
      sampling: { temperature: settings.temperature, top_p: settings.topP, top_k: settings.topK, max_tokens: settings.maxTokens },
      responseFormat: settings.jsonMode ? { type: 'json_object' as const } : null,
      tools,
      toolChoice: settings.toolChoice,
    };
    // A new conversation gets its id with its first message; each turn records the model that answers it.
    const startsConversation = !current;
    setCurrent({ ...(current ?? { id: newConversationId(), createdAt: Date.now(), title: null }), model: state.modelId });
    const partial = (content: string) => record([...conversation.entries, { message: { role: 'assistant', content } }], true);
    const outcome = conversation.send(turnEngine, text, turnSettings, (content) => {
      const saving = partial(content);
      if (saving) saver.update(saving);
      pieces++;
      firstAt ??= performance.now();
      const perSecond = pieces > 1 ? ((pieces - 1) * 1000) / Math.max(performance.now() - firstAt, 1) : 0;
      showStats([`first token ${(firstAt - start).toFixed(0)} ms`, `${perSecond.toFixed(1)} tokens/s`, `${pieces} tokens…`]);
    });
    // The user's message is in the conversation as soon as it is sent: saved at once, with an empty reply being written.
    const asked = partial('');
    if (asked) {
      saver.update(asked);
      void saver.flush().then(renderConversationList);
    }
    const ended = await outcome;
    if (engine === turnEngine) reportOutcome(ended);
    await saveTurn(ended, startsConversation);
    if (engine === turnEngine) setStatus('ready');
  }

  /**
   * The turn's last save: the conversation as it now stands (a failed edit or regenerate has put back the
   * turn it replaced), or none of it where the turn that started it failed.
   */
  async function saveTurn(outcome: TurnOutcome, startsConversation: boolean): Promise<void> {
    if (outcome.status === 'cleared') return;
    const entries = conversation.entries;
    if (startsConversation && !entries.length && current) {
      saver.cancel();
      await store?.remove(current.id);
      setCurrent(null);
    } else {
      const finished = record(entries, false);
      if (finished) saver.update(finished);
    }
    await saver.flush();
    await renderConversationList();
  }

  function reportOutcome(outcome: TurnOutcome): void {
    if (outcome.status === 'done') {
      state.lastFinishReason = outcome.finishReason;
      state.lastTimings = outcome.timings;
      state.lastUsage = outcome.usage;
      const { timings: t, usage: u } = outcome;
      if (t && u) {
        showStats([
          `first token ${t.time_to_first_token_ms.toFixed(0)} ms`,
          `${t.decode_tokens_per_second.toFixed(1)} tokens/s`,
          `${u.completion_tokens} tokens`,
          `prompt ${u.prompt_tokens} (${u.prompt_tokens_details.cached_tokens} cached)`,
        ]);
      }
    } else if (outcome.status === 'failed') {
      if (!input.value) input.value = outcome.text;
      showError(outcome.error);
    }
  }

  /** Empties the screen for a new conversation; the one it showed stays saved. */
  function startNewChat(): void {
    cancelEditing();
    conversation.clear();
    setCurrent(null);
    clearBanner('context');
    stats.textContent = state.info ? `${state.info.modelId} ready${compiling && state.info.backend.backend === 'webgpu' ? COMPILING_NOTE : ''}` : '';
    renderActions();
    void renderConversationList();
  }

  async function newChat(): Promise<void> {
    if (conversation.busy) await settleTurn();
    startNewChat();
  }

  // ---- events ----
  composer.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input.value;
    if (!text.trim() || state.status !== 'ready') return;
    const tools = turnTools();
    if (tools === undefined) return;
    if (editing) {
      stopEditing();
      conversation.takeBackLastTurn();
    }
    input.value = '';
    resizeInput();
    void send(text, tools);
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    } else if (event.key === 'Escape') {
      cancelEditing();
    }
  });
  cancelEditButton.addEventListener('click', () => {
    cancelEditing();
    input.focus();
  });
  // A last save of the reply being written, where the browser lets it finish.
  addEventListener('pagehide', () => void saver.flush());
  const resizeInput = () => {
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
  };
  input.addEventListener('input', resizeInput);
  stopButton.addEventListener('click', () => conversation.stop());
  newChatButton.addEventListener('click', () => void newChat());
  cancelButton.addEventListener('click', () => {
    loadController?.abort();
    loadController = undefined;
    progress.hidden = true;
    setStatus('idle');
    stats.textContent = 'Loading cancelled.';
  });
  modelSelect.addEventListener('change', renderDtypes);
  loadButton.addEventListener('click', () => {
    const entry = selectedEntry();
    if (!entry) return;
    const dtype = entry.dtypes.find((d) => d === dtypeSelect.value) ?? entry.dtypes[0];
    void load(entry, dtype);
  });
  addForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const entry = customEntry(urlInput.value);
    if (!entry) {
      urlInput.setCustomValidity('Paste a repo URL like https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct');
      urlInput.reportValidity();
      return;
    }
    urlInput.setCustomValidity('');
    urlInput.value = '';
    saveCustom(entry);
    if (!entryById(entry.id)) catalog.entries.push(entry);
    renderModelOptions();
    modelSelect.value = entry.id;
    renderDtypes();
  });
  urlInput.addEventListener('input', () => urlInput.setCustomValidity(''));

  // ---- start ----
  setStatus('starting');
  store = await openConversationStore(reportStorageProblem);
  const reopen = localStorage.getItem(CONVERSATION_KEY);
  const reopened = reopen ? await store.open(reopen) : null;
  if (reopened) {
    conversation.restore(reopened.entries);
    setCurrent({ id: reopened.id, createdAt: reopened.createdAt, title: reopened.title === titleFrom(reopened.entries) ? null : reopened.title, model: reopened.model });
  } else setCurrent(null);
  catalog = await loadCatalog();
  renderModelOptions();
  await renderConversationList();
  const remembered = localStorage.getItem(LAST_MODEL_KEY);
  const initial = (remembered && entryById(remembered)) || (catalog.defaultId ? entryById(catalog.defaultId) : undefined);
  if (initial) {
    modelSelect.value = initial.id;
    renderDtypes();
  }
  setStatus('idle');
  // Local and already-downloaded models load at once; anything else waits for the user to choose to download.
  if (initial && (initial.origin === 'local' || catalog.cached.get(initial.id)?.complete)) {
    void load(initial, initial.dtypes[0]);
  } else if (initial) {
    stats.textContent = `Press Load to download ${initial.name}${initial.approxBytes ? ` (~${formatBytes(initial.approxBytes)})` : ''}.`;
  }
  return state;
}
