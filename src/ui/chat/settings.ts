/**
 * The settings of the chat page, kept in localStorage: system prompt, sampling, JSON mode, and tools the
 * model may call. Values go to the engine as given; the engine validates them and its InvalidOptionError
 * (or InvalidRequestError) says what is allowed, so the page does not repeat rules. Tools are checked as
 * they are typed only to mark the field, by the engine's own parser.
 */
import { parseTools, type Tool, type ToolChoice } from '../../chat/tools';
import { h } from '../dom';

export type ToolChoiceSetting = Extract<ToolChoice, string>;

export interface ChatSettings {
  systemPrompt: string;
  temperature: number;
  topP: number;
  topK: number;
  maxTokens: number;
  /** Replies constrained to a JSON object (`response_format: { type: 'json_object' }`). */
  jsonMode: boolean;
  /** A JSON array of OpenAI function tools, as typed; blank for none. */
  tools: string;
  toolChoice: ToolChoiceSetting;
}

const KEY = 'webgpu-llm:settings';
const DEFAULTS: ChatSettings = { systemPrompt: '', temperature: 0.7, topP: 0.95, topK: 40, maxTokens: 256, jsonMode: false, tools: '', toolChoice: 'auto' };
const TOOL_CHOICES: readonly ToolChoiceSetting[] = ['auto', 'required', 'none'];

type NumberField = 'temperature' | 'topP' | 'topK' | 'maxTokens';

const NUMBER_FIELDS: { key: NumberField; label: string; min: string; max: string; step: string; help: string }[] = [
  { key: 'temperature', label: 'Temperature', min: '0', max: '2', step: '0.05', help: '0 always picks the most likely token' },
  { key: 'topP', label: 'Top-p', min: '0.01', max: '1', step: '0.01', help: '1 turns it off' },
  { key: 'topK', label: 'Top-k', min: '0', max: '1000', step: '1', help: '0 turns it off' },
  { key: 'maxTokens', label: 'Max tokens', min: '1', max: '32768', step: '1', help: 'longest reply' },
];

export function loadSettings(): ChatSettings {
  const settings = { ...DEFAULTS };
  try {
    const stored: unknown = JSON.parse(localStorage.getItem(KEY) ?? '{}');
    if (typeof stored === 'object' && stored !== null) {
      for (const [key, value] of Object.entries(stored)) {
        if ((key === 'systemPrompt' || key === 'tools') && typeof value === 'string') settings[key] = value;
        if (key === 'jsonMode' && typeof value === 'boolean') settings.jsonMode = value;
        if (key === 'toolChoice' && TOOL_CHOICES.includes(value as ToolChoiceSetting)) settings.toolChoice = value as ToolChoiceSetting;
        const field = NUMBER_FIELDS.find((f) => f.key === key);
        if (field && typeof value === 'number' && Number.isFinite(value)) settings[field.key] = value;
      }
    }
  } catch {
    // Unreadable settings are replaced by the defaults on the next save.
  }
  return settings;
}

/** The tools of the settings, null when the field is blank; an InvalidRequestError (or SyntaxError) says what is wrong. */
export function settingsTools(settings: ChatSettings): Tool[] | null {
  if (!settings.tools.trim()) return null;
  return parseTools(JSON.parse(settings.tools));
}

/** Appends the settings form to `panel`; edits update `settings` in place and are saved. */
export function mountSettings(panel: HTMLElement, settings: ChatSettings): void {
  const save = () => localStorage.setItem(KEY, JSON.stringify(settings));
  const system = h('textarea', { name: 'systemPrompt', rows: '3', placeholder: 'e.g. You are a concise assistant.' });
  system.value = settings.systemPrompt;
  system.addEventListener('input', () => {
    settings.systemPrompt = system.value;
    save();
  });
  const form = h('form', { class: 'settings-form' }, h('label', { class: 'wide' }, 'System prompt', system));
  for (const field of NUMBER_FIELDS) {
    const input = h('input', { type: 'number', name: field.key, min: field.min, max: field.max, step: field.step, inputmode: 'decimal' });
    input.value = String(settings[field.key]);
    input.addEventListener('input', () => {
      if (input.value !== '' && Number.isFinite(input.valueAsNumber)) {
        settings[field.key] = input.valueAsNumber;
        save();
      }
    });
    form.append(h('label', { title: field.help }, field.label, input));
  }

  const json = h('input', { type: 'checkbox', name: 'jsonMode' });
  json.checked = settings.jsonMode;
  json.addEventListener('change', () => {
    settings.jsonMode = json.checked;
    save();
  });
  form.append(h('label', { class: 'wide check', title: 'Constrained decoding: every reply is a JSON object' }, json, 'JSON mode (replies are JSON objects)'));

  const tools = h('textarea', { name: 'tools', rows: '4', spellcheck: 'false', placeholder: '[{"type": "function", "function": {"name": "get_weather", "parameters": {…}}}]' });
  tools.value = settings.tools;
  const checkTools = () => {
    let problem = '';
    try {
      settingsTools(settings);
    } catch (e) {
      problem = e instanceof Error ? e.message : String(e);
    }
    tools.setCustomValidity(problem);
    tools.title = problem;
  };
  checkTools();
  tools.addEventListener('input', () => {
    settings.tools = tools.value;
    save();
    checkTools();
  });
  const choice = h('select', { name: 'toolChoice' }, ...TOOL_CHOICES.map((c) => h('option', { value: c }, c)));
  choice.value = settings.toolChoice;
  choice.addEventListener('change', () => {
    settings.toolChoice = choice.value as ToolChoiceSetting;
    save();
  });
  form.append(
    h('label', { class: 'wide' }, 'Tools (JSON array of functions the model may call)', tools),
    h('label', { title: 'auto: the model decides; required: it must call one' }, 'Tool choice', choice),
  );
  form.addEventListener('submit', (event) => event.preventDefault());
  panel.append(form);
}
