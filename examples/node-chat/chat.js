#!/usr/bin/env node
// Chat with a model from the terminal: `node chat.js <model folder or URL>`, one message per line; an empty
// line or Ctrl-D ends. The GPU comes from Dawn (VK_ICD_FILENAMES picks a Vulkan driver, e.g. a software one).
import { createInterface } from 'node:readline';
import { createEngine } from 'webgpu-llm-runtime/node';

const model = process.argv[2];
if (!model) {
  console.error('usage: node chat.js <model folder or URL>');
  process.exit(2);
}

const engine = await createEngine(model);
const messages = [];
process.stderr.write('> ');
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === '') break;
  messages.push({ role: 'user', content: line });
  let reply = '';
  const stream = await engine.chat.completions.create({ messages, stream: true, temperature: 0, max_tokens: 60 });
  for await (const chunk of stream) {
    const text = chunk.choices[0].delta.content ?? '';
    reply += text;
    process.stdout.write(text);
  }
  process.stdout.write('\n');
  messages.push({ role: 'assistant', content: reply });
  process.stderr.write('> ');
}
await engine.dispose();
// Dawn can keep the event loop alive after the last request.
process.exit(0);
