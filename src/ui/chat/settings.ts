/**
 * The sampling settings of the chat page, kept in localStorage. Values go to the engine as given; the
 * engine validates them and its InvalidOptionError says what is allowed, so the page does not repeat rules.
 */
import { h } from '../dom';

export interface ChatSettings {
  systemPrompt: string;
  temperature: number;
  topP: number;
  topK: number;
  maxTokens: number;
}

const KEY = 'webgpu-llm:settings';
const DEFAULTS: ChatSettings = { systemPrompt: '', temperature: 0.7, topP: 0.95, topK: 40, maxTokens: 256 };

type NumberField = Exclude<keyof ChatSettings, 'systemPrompt'>;

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
        if (key === 'systemPrompt' && typeof value === 'string') settings.systemPrompt = value;
        const field = NUMBER_FIELDS.find((f) => f.key === key);
        if (field && typeof value === 'number' && Number.isFinite(value)) settings[field.key] = value;
      }
    }
  } catch {
    // Unreadable settings are replaced by the defaults on the next save.
  }
  return settings;
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
  form.addEventListener('submit', (event) => event.preventDefault());
  panel.append(form);
}
