/**
 * `<llm-chat model="…">`: a self-contained chat box in a shadow root. The model attribute is a model folder
 * URL (relative to the page) or a Hugging Face repo URL; weights download once into IndexedDB.
 *
 * Attributes: model, dtype ("f16" | "f32"), context-length, system-prompt, temperature, top-p, top-k,
 * max-tokens, placeholder, in-thread (run the engine without a worker), json-mode (replies are JSON objects,
 * by constrained decoding; the `jsonMode` property reflects it), tool-choice ("auto" | "required" | "none").
 * Properties: `tools` (OpenAI function tools the model may call; a call is shown as a block with the function's
 * name and arguments), `toolChoice` (as the attribute, or `{ type: 'function', function: { name } }`).
 * Theming: CSS custom properties --llm-chat-font, -bg, -fg, -muted, -accent, -accent-fg, -border, -radius,
 * -user-bg, -user-fg, -assistant-bg, -assistant-fg, -height; and ::part(container | header | title | status |
 * progress | error | reload | new-chat | messages | message | user | assistant | tool-call | composer | input | send | stop).
 * Events: llm-ready (detail: EngineInfo), llm-error (detail: the error), llm-reply (detail: { content,
 * toolCalls, finishReason }). The host's `data-status` is loading | ready | generating | error.
 *
 * Styles are adopted stylesheets, not <style> elements, so `style-src 'self'` does not block them.
 */
import messagesCss from '../ui/messages.css?inline';
import type { ChatCompletionMessageParam, Tool, ToolChoice } from '../engine/types';
import { describeError } from '../errors';
import type { BackendChoice } from '../engine/backend';
import { checkWebGpu } from '../gpu/device';
import { Conversation } from '../ui/conversation';
import { formatBytes } from '../ui/format';
import { createMessageList } from '../ui/messages';
import type { ChatEngine } from '../worker/chat-engine';
import { createChatEngine, type EngineMode } from './engine';
import chatCss from './llm-chat.css?inline';

export interface LlmChatElement extends HTMLElement {
  /** The engine once the model is loaded, for the page's own calls (`chat.completions.create`). */
  readonly engine: ChatEngine | null;
  /** Where the engine runs, once loaded. */
  readonly engineMode: EngineMode | null;
  /** Which backend runs the model (WebGPU or the CPU path) and why, once loaded. */
  readonly backend: BackendChoice | null;
  /** The conversation so far (without the system prompt). */
  readonly messages: readonly ChatCompletionMessageParam[];
  /** Replies constrained to a JSON object; reflects the json-mode attribute. */
  jsonMode: boolean;
  /** Functions the model may call on the next turns; null for none. The engine validates them when a message is sent. */
  tools: Tool[] | null;
  /** Whether the model must call a tool; the tool-choice attribute unless set here. */
  toolChoice: ToolChoice | null;
}

const RELOAD_ATTRIBUTES = ['model', 'dtype', 'context-length', 'in-thread', 'backend'];

function hasWebGpu(): boolean {
  try {
    checkWebGpu();
    return true;
  } catch {
    return false;
  }
}

function numberAttribute(element: HTMLElement, name: string, fallback: number | undefined): number | undefined {
  const raw = element.getAttribute(name);
  if (raw === null || raw.trim() === '') return fallback;
  const value = Number(raw);
  return Number.isFinite(value) ? value : fallback;
}

/** The properties a page may set before the element is defined. */
const UPGRADED_PROPERTIES = ['tools', 'toolChoice', 'jsonMode'] as const;

/** Registers the element (once) under `tagName`. Done by the script-tag build on load. */
export function defineLlmChat(tagName = 'llm-chat'): void {
  if (customElements.get(tagName)) return;

  const sheet = new CSSStyleSheet();
  sheet.replaceSync(`${messagesCss}\n${chatCss}`);

  class LlmChat extends HTMLElement implements LlmChatElement {
    static readonly observedAttributes = RELOAD_ATTRIBUTES;
    engine: ChatEngine | null = null;
    engineMode: EngineMode | null = null;
    backend: BackendChoice | null = null;
    private readonly list = createMessageList();
    private readonly conversation = new Conversation(this.list);
    private readonly titleText = this.makePart('span', 'title');
    private readonly status = this.makePart('span', 'status');
    private readonly progress = this.makePart('progress', 'progress');
    private readonly error = this.makePart('div', 'error');
    private readonly input = this.makePart('textarea', 'input');
    private readonly send = this.makePart('button', 'send');
    private readonly stop = this.makePart('button', 'stop');
    private loading: AbortController | undefined;
    private toolList: Tool[] | null = null;
    private chosenTool: ToolChoice | null = null;

    constructor() {
      super();
      // Set on the element before it was defined (an upgrade): those became own properties that hide the
      // accessors below; each goes through its setter instead.
      for (const name of UPGRADED_PROPERTIES) {
        if (!Object.hasOwn(this, name)) continue;
        const value: unknown = this[name];
        delete this[name];
        Object.assign(this, { [name]: value });
      }
      const root = this.attachShadow({ mode: 'open' });
      root.adoptedStyleSheets = [sheet];
      const header = this.makePart('div', 'header');
      header.append(this.titleText, this.status);
      const composer = this.makePart('form', 'composer');
      this.input.rows = 2;
      this.send.type = 'submit';
      this.send.textContent = 'Send';
      this.stop.type = 'button';
      this.stop.textContent = 'Stop';
      this.stop.hidden = true;
      composer.append(this.input, this.stop, this.send);
      this.error.hidden = true;
      this.error.setAttribute('role', 'alert');
      const container = this.makePart('div', 'container');
      container.append(header, this.progress, this.error, this.list.element, composer);
      root.append(container);

      composer.addEventListener('submit', (event) => {
        event.preventDefault();
        void this.ask();
      });
      this.input.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          composer.requestSubmit();
        }
      });
      this.stop.addEventListener('click', () => this.conversation.stop());
    }

    get messages(): readonly ChatCompletionMessageParam[] {
      return this.conversation.messages;
    }

    get jsonMode(): boolean {
      return this.hasAttribute('json-mode');
    }

    set jsonMode(on: boolean) {
      this.toggleAttribute('json-mode', Boolean(on));
    }

    get tools(): Tool[] | null {
      return this.toolList;
    }

    set tools(list: Tool[] | null) {
      this.toolList = list;
    }

    get toolChoice(): ToolChoice | null {
      if (this.chosenTool) return this.chosenTool;
      const attribute = this.getAttribute('tool-choice');
      return attribute === 'auto' || attribute === 'required' || attribute === 'none' ? attribute : null;
    }

    set toolChoice(choice: ToolChoice | null) {
      this.chosenTool = choice;
    }

    private makePart<K extends keyof HTMLElementTagNameMap>(tag: K, name: string): HTMLElementTagNameMap[K] {
      const node = document.createElement(tag);
      node.setAttribute('part', name);
      node.className = name;
      return node;
    }

    connectedCallback(): void {
      if (!this.engine && !this.loading) void this.load();
    }

    disconnectedCallback(): void {
      this.loading?.abort();
      this.loading = undefined;
      this.conversation.stop();
      void this.engine?.dispose();
      this.engine = null;
    }

    attributeChangedCallback(name: string, previous: string | null, next: string | null): void {
      if (previous !== next && RELOAD_ATTRIBUTES.includes(name) && this.isConnected && (this.engine || this.loading)) void this.load();
    }

    private setStatus(status: 'loading' | 'ready' | 'generating' | 'error', text: string): void {
      this.dataset.status = status;
      this.status.textContent = text;
      const busy = status === 'generating';
      this.send.disabled = status !== 'ready';
      this.send.hidden = busy;
      this.stop.hidden = !busy;
    }

    /** Shows the error; where loading again can help (a lost device, a failed download) offers that. */
    private fail(error: unknown, canReload: boolean): void {
      const description = describeError(error);
      const text = (tag: 'strong' | 'p', value: string) => Object.assign(document.createElement(tag), { textContent: value });
      this.error.hidden = false;
      this.error.replaceChildren(text('strong', description.title), text('p', description.detail), text('p', description.hint));
      if (canReload) {
        const reload = this.makePart('button', 'reload');
        reload.type = 'button';
        reload.textContent = description.kind === 'device-lost' ? 'Reload model' : 'Try again';
        reload.addEventListener('click', () => void this.load());
        this.error.append(reload);
      }
      if (description.kind === 'context') {
        const restart = this.makePart('button', 'new-chat');
        restart.type = 'button';
        restart.textContent = 'New chat';
        restart.addEventListener('click', () => this.newChat());
        this.error.append(restart);
      }
      this.dispatchEvent(new CustomEvent('llm-error', { detail: error }));
    }

    private async load(): Promise<void> {
      this.loading?.abort();
      const controller = new AbortController();
      this.loading = controller;
      const previous = this.engine;
      this.engine = null;
      await previous?.dispose().catch(() => {});
      const model = this.getAttribute('model');
      this.titleText.textContent = model ?? '';
      this.error.hidden = true;
      this.input.placeholder = this.getAttribute('placeholder') ?? 'Message (Enter to send)';
      this.progress.hidden = false;
      this.progress.removeAttribute('value');
      this.setStatus('loading', 'Loading…');
      try {
        if (!model) throw new Error('<llm-chat> needs a model attribute: a model folder URL or a Hugging Face repo URL.');
        const dtype = this.getAttribute('dtype');
        const asked = this.getAttribute('backend');
        const { engine, mode } = await createChatEngine(new URL(model, document.baseURI).href, {
          // Without WebGPU in the page, only the CPU path (a worker may see WebGPU where its page does not).
          backend: !hasWebGpu() ? 'wasm' : asked === 'webgpu' || asked === 'wasm' ? asked : 'auto',
          dtype: dtype === 'f16' || dtype === 'f32' ? dtype : undefined,
          contextLength: numberAttribute(this, 'context-length', undefined),
          inThread: this.hasAttribute('in-thread'),
          signal: controller.signal,
          onProgress: (p) => {
            // Slices are uploaded (and quantized) as they are read: the read stage's bytes carry the bar.
            if (this.loading !== controller || (p.phase === 'load' && (p.stage === 'upload' || p.stage === 'quantize'))) return;
            this.progress.value = p.total > 0 ? p.loaded / p.total : 0;
            this.status.textContent =
              p.phase === 'load' && p.stage === 'compile'
                ? `Preparing the GPU kernels (${p.loaded} / ${p.total})`
                : `${p.phase === 'download' ? 'Downloading' : 'Loading'} ${formatBytes(p.loaded)} / ${formatBytes(p.total)}`;
          },
        });
        if (this.loading !== controller) return void engine.dispose();
        this.engine = engine;
        this.engineMode = mode;
        this.backend = engine.info.backend;
        this.titleText.textContent = engine.info.modelId.replace(/\/$/, '').split('/').pop() ?? engine.info.modelId;
        this.setStatus('ready', engine.info.backend.backend === 'wasm' ? 'Ready (CPU)' : 'Ready');
        this.status.title = `${engine.info.backend.backend === 'wasm' ? 'CPU' : 'WebGPU'}: ${engine.info.backend.device} (${engine.info.backend.reason})`;
        this.dispatchEvent(new CustomEvent('llm-ready', { detail: engine.info }));
        void engine.lost.then((error) => {
          if (this.engine !== engine) return;
          this.engine = null;
          void engine.dispose().catch(() => {});
          this.setStatus('error', 'GPU lost');
          this.fail(error, true);
        });
      } catch (e) {
        if (this.loading !== controller) return;
        this.setStatus('error', 'Error');
        this.fail(e, describeError(e).kind !== 'no-webgpu');
      } finally {
        if (this.loading === controller) {
          this.loading = undefined;
          this.progress.hidden = true;
        }
      }
    }

    private async ask(): Promise<void> {
      const engine = this.engine;
      const text = this.input.value;
      if (!engine || this.dataset.status !== 'ready' || !text.trim()) return;
      this.input.value = '';
      this.error.hidden = true;
      this.setStatus('generating', 'Writing…');
      const outcome = await this.conversation.send(engine, text, {
        systemPrompt: this.getAttribute('system-prompt'),
        sampling: {
          temperature: numberAttribute(this, 'temperature', 0.7),
          top_p: numberAttribute(this, 'top-p', undefined),
          top_k: numberAttribute(this, 'top-k', undefined),
          max_tokens: numberAttribute(this, 'max-tokens', 256),
        },
        responseFormat: this.jsonMode ? { type: 'json_object' } : null,
        tools: this.tools,
        toolChoice: this.toolChoice,
      });
      let speed = '';
      if (outcome.status === 'done') {
        const perSecond = outcome.timings?.decode_tokens_per_second;
        if (perSecond) speed = `${perSecond.toFixed(1)} tokens/s`;
        const detail = { content: outcome.content, toolCalls: outcome.toolCalls, finishReason: outcome.finishReason };
        this.dispatchEvent(new CustomEvent('llm-reply', { detail }));
      } else if (outcome.status === 'failed') {
        if (!this.input.value) this.input.value = outcome.text;
        if (this.engine === engine) this.fail(outcome.error, false);
      }
      if (this.engine === engine) this.setStatus('ready', speed || 'Ready');
    }

    /** Forgets the conversation (offered when it has outgrown the context). */
    private newChat(): void {
      this.conversation.clear();
      this.error.hidden = true;
    }
  }

  customElements.define(tagName, LlmChat);
}
