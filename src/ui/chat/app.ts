/**
 * The chat page: model picker (with what is cached), download progress, streaming replies, Stop, New chat,
 * sampling settings, live speed, and error banners that say what to do. The engine runs in a worker; the
 * page keeps the conversation, so a lost GPU device costs a model reload, not the chat. The backend is
 * `?backend=` (auto by default: WebGPU on a hardware adapter, else the CPU path); where the page has no
 * WebGPU at all, only the CPU path is tried, and the status line says which runs and why.
 *
 * The state is mirrored to `window.__chat` so a headless browser can wait for it, read it and drive the
 * engine directly (the tests compare what the page streamed with a direct request).
 */
import type { ChatCompletionMessageParam, ChatFinishReason, Timings, Usage } from '../../engine/types';
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
import { Conversation, type TurnRequest } from '../conversation';
import { h } from '../dom';
import { formatBytes, formatSeconds } from '../format';
import { createMessageList } from '../messages';
import { customEntry, loadCatalog, refreshCached, saveCustom, type Catalog, type DtypeChoice, type ModelEntry } from './catalog';
import { loadSettings, mountSettings } from './settings';

export type ChatStatus = 'starting' | 'idle' | 'loading' | 'ready' | 'generating' | 'error';

export interface ChatPageState {
  status: ChatStatus;
  /** The model loaded (or being loaded), by catalog id. */
  modelId: string | null;
  info: EngineInfo | null;
  progressEvents: number;
  /** The last download progress event of the current load; null when nothing was downloaded. */
  lastDownload: LoadProgress | null;
  /** The conversation as sent to the engine (without the system prompt). */
  readonly messages: readonly ChatCompletionMessageParam[];
  readonly lastRequest: TurnRequest | null;
  lastFinishReason: ChatFinishReason | null;
  lastTimings: Timings | null;
  lastUsage: Usage | null;
  error: { name: string; message: string; kind: ErrorKind } | null;
  engine: ChatEngine | null;
  /** Shows `text` as an assistant reply, through the same renderer as model output (tests feed it hostile text). */
  showAssistantMessage(text: string): void;
}

declare global {
  interface Window {
    __chat?: ChatPageState;
  }
}

const LAST_MODEL_KEY = 'webgpu-llm:last-model';

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
  const conversation = new Conversation(messages);
  const state: ChatPageState = {
    status: 'starting',
    modelId: null,
    info: null,
    progressEvents: 0,
    lastDownload: null,
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
  const composer = h('form', { class: 'composer' }, input, h('div', { class: 'actions' }, newChatButton, stopButton, sendButton));
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
    h('p', { class: 'hint' }, 'Any Hugging Face repo with safetensors weights (Llama, Qwen2/3, Mistral, GPT-2 architectures):'),
    addForm,
  );
  // Side panels are open where there is room for them beside the chat, and folded above it on phones.
  const wide = matchMedia('(min-width: 900px)');
  const foldPanels = () => {
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
      h('aside', { class: 'side' }, settingsPanel, modelsPanel),
    ),
  );

  // ---- state ----
  let catalog: Catalog = { entries: [], cached: new Map(), defaultId: undefined };
  let engine: ChatEngine | null = null;
  let loadedEntry: { entry: ModelEntry; dtype: DtypeChoice } | null = null;
  let loadController: AbortController | undefined;

  function setStatus(status: ChatStatus): void {
    state.status = status;
    root.dataset.status = status;
    const busy = status === 'generating';
    sendButton.disabled = status !== 'ready';
    stopButton.hidden = !busy;
    sendButton.hidden = busy;
    loadButton.disabled = status === 'starting';
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
      restart.addEventListener('click', newChat);
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

  function showInfo(info: EngineInfo): void {
    notice.hidden = !info.usesFallbackTemplate;
    notice.textContent = info.usesFallbackTemplate
      ? `${info.modelId} has no chat template, so it is prompted with a plain “User:/Assistant:” transcript (${info.chatTemplate}). ` +
        'Base models continue text rather than answer: try the start of a story, e.g. “Once upon a time”.'
      : '';
    const why = { memory: ' (what fits in memory)', default: ' (the default)', model: '', requested: '' }[info.contextLimitedBy];
    const { backend, reason, device } = info.backend;
    const runsOn = backend === 'wasm' ? `CPU (${device}; ${reason})` : `WebGPU on ${device || 'the GPU'}${reason === 'hardware adapter' ? '' : ` (${reason})`}`;
    stats.textContent = `${info.modelId} ready · context ${info.contextLength} tokens${why} · ${runsOn}`;
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
      showInfo(loaded.info);
      setStatus('ready');
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

  async function send(text: string): Promise<void> {
    const current = engine;
    if (!current || state.status !== 'ready' || !text.trim()) return;
    setStatus('generating');
    clearBanner('context');
    let pieces = 0;
    const start = performance.now();
    let firstAt: number | undefined;
    const turnSettings = {
      systemPrompt: settings.systemPrompt,
      sampling: { temperature: settings.temperature, top_p: settings.topP, top_k: settings.topK, max_tokens: settings.maxTokens },
    };
    const outcome = await conversation.send(current, text, turnSettings, () => {
      pieces++;
      firstAt ??= performance.now();
      const perSecond = pieces > 1 ? ((pieces - 1) * 1000) / Math.max(performance.now() - firstAt, 1) : 0;
      showStats([`first token ${(firstAt - start).toFixed(0)} ms`, `${perSecond.toFixed(1)} tokens/s`, `${pieces} tokens…`]);
    });
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
      if (engine === current) showError(outcome.error);
    }
    if (engine === current) setStatus('ready');
  }

  function newChat(): void {
    conversation.clear();
    clearBanner('context');
    stats.textContent = state.info ? `${state.info.modelId} ready` : '';
  }

  // ---- events ----
  composer.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input.value;
    if (!text.trim() || state.status !== 'ready') return;
    input.value = '';
    resizeInput();
    void send(text);
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  const resizeInput = () => {
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
  };
  input.addEventListener('input', resizeInput);
  stopButton.addEventListener('click', () => conversation.stop());
  newChatButton.addEventListener('click', newChat);
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
  catalog = await loadCatalog();
  renderModelOptions();
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
