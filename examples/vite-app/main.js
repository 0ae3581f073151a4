// The engine in a worker, a streamed reply into the page. ?model=<URL> and ?prompt=<text> override the defaults.
import { createWorkerEngine } from 'webgpu-llm-runtime/worker';

const params = new URLSearchParams(location.search);
const model = new URL(params.get('model') ?? '/models/stories260K/', location.href).href;
const prompt = params.get('prompt') ?? 'Once upon a time';
const output = document.querySelector('#output');
const status = document.querySelector('#status');

try {
  const engine = await createWorkerEngine(model);
  status.textContent = 'generating…';
  output.textContent = prompt;
  for await (const delta of engine.generate(prompt, { temperature: 0, max_tokens: 40 })) output.textContent += delta.text;
  status.textContent = 'done';
} catch (error) {
  status.textContent = `failed: ${error.name}: ${error.message}`;
}
