/** Tool calling without a model: the real Qwen3 template's rendering of a tool conversation, and per-family parsing. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createChatFormatter } from '../../src/chat/template';
import { parseToolCalls, parseToolChoice, parseTools, ToolCallSplitter, toolSyntaxFor, TOOL_SYNTAXES, type Tool } from '../../src/chat/tools';
import { InvalidRequestError } from '../../src/chat/messages';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';
import { modelPath } from '../models';

const tools: Tool[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  },
];

describe('tool conversation through the Qwen3 template', () => {
  it('renders tools, the assistant’s call and the tool result as the template’s reference rendering', () => {
    const dir = modelPath('..', 'tokenizers', 'qwen3');
    const config = readFileSync(`${dir}/tokenizer_config.json`, 'utf8');
    const tokenizer = loadTokenizer({ tokenizerJson: readFileSync(`${dir}/tokenizer.json`, 'utf8'), tokenizerConfig: config });
    const formatter = createChatFormatter(config, tokenizer);
    const messages = [
      { role: 'system' as const, content: 'Be brief.' },
      { role: 'user' as const, content: 'Weather in Paris?' },
      { role: 'assistant' as const, content: null, tool_calls: [{ id: 'call_1', type: 'function' as const, function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }] },
      { role: 'tool' as const, tool_call_id: 'call_1', content: '{"temp": 21}' },
    ];
    const expected =
      '<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' +
      'You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n' +
      '{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city", "parameters": ' +
      '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}\n</tools>\n\n' +
      'For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n' +
      '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' +
      '<|im_start|>user\nWeather in Paris?<|im_end|>\n' +
      '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n' +
      '<|im_start|>user\n<tool_response>\n{"temp": 21}\n</tool_response><|im_end|>\n' +
      '<|im_start|>assistant\n';
    expect(formatter.render(messages, { tools: tools as never })).toBe(expected);
    expect(toolSyntaxFor(formatter.templateText, (t) => tokenizer.tokenToId(t) !== undefined).family).toBe('hermes');
  });
});

describe('tool-call parsing', () => {
  it('reads each family’s syntax into OpenAI tool calls with arguments as JSON text', () => {
    const hermes = parseToolCalls('<tool_call>\n{"name": "a", "arguments": {"x": 1}}\n</tool_call>\n<tool_call>{"name": "b", "arguments": {}}</tool_call>', TOOL_SYNTAXES.hermes);
    expect(hermes?.map((c) => [c.function.name, c.function.arguments])).toEqual([['a', '{"x":1}'], ['b', '{}']]);
    const llama = parseToolCalls(' {"name": "a", "parameters": {"x": "y"}}', TOOL_SYNTAXES.llama3);
    expect(llama?.map((c) => [c.function.name, JSON.parse(c.function.arguments)])).toEqual([['a', { x: 'y' }]]);
    const mistral = parseToolCalls('[TOOL_CALLS][{"name": "a", "arguments": {"x": 2}}, {"name": "b", "arguments": {}}]', TOOL_SYNTAXES.mistral);
    expect(mistral?.map((c) => c.function.name)).toEqual(['a', 'b']);
    expect(new Set([...hermes!, ...mistral!].map((c) => c.id)).size).toBe(4);
    expect(parseToolCalls('<tool_call>{"name": broken</tool_call>', TOOL_SYNTAXES.hermes)).toBeNull();
  });

  it('streams content up to the marker, holding back a partial marker, and gives the calls at the end', () => {
    const splitter = new ToolCallSplitter(TOOL_SYNTAXES.hermes);
    const out = ['Sure. <to', 'ol_c', 'all>\n{"name": "get_weather", ', '"arguments": {"city": "Rome"}}\n</tool_call>'].map((t) => splitter.push(t));
    expect(out).toEqual(['Sure. ', '', '', '']);
    const { calls, rest } = splitter.finish();
    expect(rest).toBe('');
    expect(calls?.[0].function).toEqual({ name: 'get_weather', arguments: '{"city":"Rome"}' });

    const plain = new ToolCallSplitter(TOOL_SYNTAXES.hermes);
    expect(plain.push('a <')).toBe('a ');
    expect(plain.push(' b')).toBe('< b');
    expect(plain.finish()).toEqual({ calls: null, rest: '' });
    const broken = new ToolCallSplitter(TOOL_SYNTAXES.hermes);
    broken.push('<tool_call>{oops');
    expect(broken.finish()).toEqual({ calls: null, rest: '<tool_call>{oops' });
  });

  it('validates tools and tool_choice with typed errors', () => {
    expect(parseToolChoice(undefined, tools)).toBe('auto');
    expect(parseToolChoice(undefined, [])).toBe('none');
    expect(parseToolChoice({ type: 'function', function: { name: 'get_weather' } }, tools)).toEqual({ type: 'function', function: { name: 'get_weather' } });
    expect(() => parseToolChoice({ type: 'function', function: { name: 'other' } }, tools)).toThrow(InvalidRequestError);
    expect(() => parseToolChoice('required', [])).toThrow(InvalidRequestError);
    expect(() => parseTools([{ type: 'function', function: { name: 'bad name' } }])).toThrow(InvalidRequestError);
    expect(() => parseTools([tools[0], tools[0]])).toThrow(InvalidRequestError);
    expect(parseTools(tools)).toEqual(tools);
  });
});
