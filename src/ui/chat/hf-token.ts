/**
 * The Models panel's Hugging Face access token, for gated repos (Llama 3.2, Gemma 3): kept in this browser's
 * localStorage only, handed to each load, and sent by the engine to https://huggingface.co only
 * (huggingFaceFetch). Never part of a URL, a cache key or an error message.
 */
import { AccessTokenError, checkAccessToken } from '../../net/hf-token';
import { h } from '../dom';

const KEY = 'webgpu-llm:hf-token';

export function storedHfToken(): string | undefined {
  return localStorage.getItem(KEY) ?? undefined;
}

/** A password field with Save and Forget; says whether a token is stored, never shows it. */
export function hfTokenField(): HTMLElement {
  const input = h('input', {
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: 'hf_…',
    'aria-label': 'Hugging Face access token',
  });
  const state = h('span', { class: 'hint' });
  const forget = h('button', { type: 'button' }, 'Forget');
  const show = () => {
    const stored = storedHfToken() !== undefined;
    state.textContent = stored ? 'A token is saved in this browser.' : 'No token saved.';
    forget.hidden = !stored;
  };
  const form = h(
    'form',
    { class: 'hf-token' },
    h('label', {}, 'Access token for gated models (sent only to huggingface.co): ', input),
    h('button', { type: 'submit' }, 'Save'),
    forget,
    state,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    try {
      localStorage.setItem(KEY, checkAccessToken(input.value));
      input.value = '';
      input.setCustomValidity('');
    } catch (e) {
      if (!(e instanceof AccessTokenError)) throw e;
      input.setCustomValidity(e.message);
      input.reportValidity();
    }
    show();
  });
  forget.addEventListener('click', () => {
    localStorage.removeItem(KEY);
    show();
  });
  show();
  return form;
}
