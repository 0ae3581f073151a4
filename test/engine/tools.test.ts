/**
 * Tool calling end to end on a random-weight Qwen3-shaped model with the real Qwen3 tokenizer and chat
 * template (151,936 logits): a forced call (named, or `required`) always comes out as a tool call whose
 * arguments validate against the function's parameters, streamed as tool_calls deltas with finish_reason
 * "tool_calls". Slow for a test (each token runs a 151,936-row LM head on lavapipe), so one seed each.
 */
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tool } from '../../src/chat/tools';
import { writeSafetensors } from '../../src/dev/safetensors-writer';
import { randomModel, SMALL_MODELS } from '../../src/dev/random-model';
import { createEngine, type Engine } from '../../src/engine/engine';
import type { ToolCallDelta } from '../../src/engine/types';
import { memoryFiles } from '../../src/model/files';
import { testGpu } from '../gpu';
import { modelPath } from '../models';

let engine: Engine;
beforeAll(async () => {
  const dir = modelPath('..', 'tokenizers', 'qwen3');
  const { config, tensors } = randomModel('qwen3', { ...SMALL_MODELS.qwen3, vocabSize: 151936, numLayers: 1, maxContext: 512, eosTokenId: 151645 }, 1234);
  const files = new Map<string, string | Uint8Array>([
    ['config.json', JSON.stringify(config)],
    ['model.safetensors', writeSafetensors([...tensors].map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, data: t.data })))],
    ['tokenizer.json', readFileSync(`${dir}/tokenizer.json`, 'utf8')],
    ['tokenizer_config.json', readFileSync(`${dir}/tokenizer_config.json`, 'utf8')],
  ]);
  engine = await createEngine(memoryFiles('random-qwen3', files), { gpu: await testGpu(), contextLength: 512 });
});
afterAll(() => engine?.dispose());

// Bounded arguments (enums, whole-decade integer ranges, which xgrammar gets exact, booleans): a random
// model then always finishes the call.
const tools: Tool[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Weather in a city',
      parameters: {
        type: 'object',
        properties: { city: { enum: ['Paris', 'Oslo', 'Lima'] }, days: { type: 'integer', minimum: 0, maximum: 9 }, metric: { type: 'boolean' } },
        required: ['city', 'days'],
        additionalProperties: false,
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'set_alarm',
      parameters: { type: 'object', properties: { hour: { type: 'integer', minimum: 0, maximum: 19 } }, required: ['hour'], additionalProperties: false },
    },
  },
];
const messages = [{ role: 'user' as const, content: 'What is the weather in Oslo this week?' }];
const ajv = new Ajv();

function expectValidCall(call: { function: { name: string; arguments: string } }, name?: string): void {
  const tool = tools.find((t) => t.function.name === call.function.name);
  expect(tool, call.function.name).toBeDefined();
  if (name) expect(call.function.name).toBe(name);
  expect(ajv.validate(tool!.function.parameters!, JSON.parse(call.function.arguments)), call.function.arguments).toBe(true);
}

describe('forced tool calls (Qwen3 template, random weights)', () => {
  it('a named tool_choice gives that call with valid arguments; streaming gives the same call as deltas', async () => {
    const choice = { type: 'function' as const, function: { name: 'get_weather' } };
    const request = { messages, tools, tool_choice: choice, temperature: 1, seed: 1, max_tokens: 80 };
    const completion = await engine.chat.completions.create(request);
    const { message, finish_reason } = completion.choices[0];
    expect(finish_reason, message.content).toBe('tool_calls');
    expect(message.content).toBe('');
    expect(message.tool_calls).toHaveLength(1);
    expectValidCall(message.tool_calls![0], 'get_weather');

    const deltas: ToolCallDelta[] = [];
    let finish: string | null = null;
    let content = '';
    for await (const chunk of await engine.chat.completions.create({ ...request, stream: true })) {
      deltas.push(...(chunk.choices[0].delta.tool_calls ?? []));
      content += chunk.choices[0].delta.content ?? '';
      finish = chunk.choices[0].finish_reason ?? finish;
    }
    expect(finish).toBe('tool_calls');
    expect(content).toBe('');
    expect(deltas.map((d) => [d.index, d.type, d.function])).toEqual([[0, 'function', message.tool_calls![0].function]]);
  }, 300_000);

  it('tool_choice "required" calls one of the tools with valid arguments', async () => {
    const completion = await engine.chat.completions.create({ messages, tools, tool_choice: 'required', temperature: 1, seed: 4, max_tokens: 80 });
    expect(completion.choices[0].finish_reason).toBe('tool_calls');
    expectValidCall(completion.choices[0].message.tool_calls![0]);
  }, 300_000);

  it('a history with a call and its result goes through the template', async () => {
    const history = [
      ...messages,
      { role: 'assistant' as const, content: null, tool_calls: [{ id: 'call_9', type: 'function' as const, function: { name: 'get_weather', arguments: '{"city": "Oslo", "days": 7}' } }] },
      { role: 'tool' as const, tool_call_id: 'call_9', content: 'Snow all week.' },
    ];
    const ids = await engine.encodeMessages(history, undefined, tools);
    const text = engine.tokenizer.decode(ids);
    expect(text).toContain('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo", "days": 7}}\n</tool_call><|im_end|>');
    expect(text).toContain('<|im_start|>user\n<tool_response>\nSnow all week.\n</tool_response><|im_end|>\n<|im_start|>assistant\n');
  });
});
