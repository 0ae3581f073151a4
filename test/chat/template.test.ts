import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import {
  CHATML_FALLBACK_TEMPLATE,
  ChatTemplateError,
  createChatFormatter,
  encodeChat,
  InvalidRequestError,
  validateMessages,
  type ChatMessageInput,
  type ChatTokenizer,
} from '../../src/chat/template';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';
import { llama2TokenizerPath, modelPath } from '../models';

// Counts template compilations, to check that a formatter compiles once and reuses the result.
const compiled = vi.hoisted(() => ({ count: 0 }));
vi.mock('@huggingface/jinja', async (importOriginal) => {
  const jinja = await importOriginal<typeof import('@huggingface/jinja')>();
  class CountingTemplate extends jinja.Template {
    constructor(source: string) {
      super(source);
      compiled.count++;
    }
  }
  return { ...jinja, Template: CountingTemplate };
});

const llamaDir = llama2TokenizerPath('.');
const storiesDir = modelPath('stories260K');

function readShared(dir: string, file: string): string {
  return readFileSync(resolve(dir, file), 'utf8');
}

type Json = Record<string, unknown>;
const llamaConfig = JSON.parse(readShared(llamaDir, 'tokenizer_config.json')) as Json;
const llama = loadTokenizer({ tokenizerJson: readShared(llamaDir, 'tokenizer.json'), tokenizerConfig: llamaConfig });
const storiesJsonText = readShared(storiesDir, 'tokenizer.json');
const storiesConfigText = readShared(storiesDir, 'tokenizer_config.json');
const stories = loadTokenizer({ tokenizerJson: storiesJsonText, tokenizerConfig: storiesConfigText });

/** For configs that name all their special tokens: a tokenizer that knows none, so nothing leaks in from it. */
const bareTokenizer: ChatTokenizer = { tokenToId: () => undefined, idToToken: () => undefined, bosTokenId: null, eosTokenIds: [] };

// Templates as published in the models' tokenizer_config.json (the JSON string decoded: `\n` inside Jinja
// string literals is Jinja's escape, so String.raw keeps it as written).

/** meta-llama/Llama-2-7b-chat-hf. */
const LLAMA2_TEMPLATE = String.raw`{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}`;

/** Qwen/Qwen2.5-0.5B-Instruct (ChatML with a default system prompt and tool calls). */
const QWEN25_TEMPLATE = String.raw`{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
`;

/** HuggingFaceTB/SmolLM2-135M-Instruct: ChatML whose string literals hold real newlines. */
const SMOLLM2_TEMPLATE = `{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system
You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
' }}{% endif %}{{'<|im_start|>' + message['role'] + '
' + message['content'] + '<|im_end|>' + '
'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant
' }}{% endif %}`;

/** meta-llama/Meta-Llama-3-8B-Instruct. */
const LLAMA3_TEMPLATE = String.raw`{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}`;

const llama2Config = { ...llamaConfig, chat_template: LLAMA2_TEMPLATE };
const qwenConfig = {
  bos_token: null,
  eos_token: '<|im_end|>',
  pad_token: '<|endoftext|>',
  chat_template: QWEN25_TEMPLATE,
};
const llama3Config = {
  // Written as AddedToken objects, as older transformers versions save them.
  bos_token: { __type: 'AddedToken', content: '<|begin_of_text|>', lstrip: false, normalized: false, rstrip: false, single_word: false },
  eos_token: { __type: 'AddedToken', content: '<|eot_id|>', lstrip: false, normalized: false, rstrip: false, single_word: false },
  chat_template: LLAMA3_TEMPLATE,
};

const conversation = [
  { role: 'system', content: 'You are a concise assistant.' },
  { role: 'user', content: 'What is the capital of France?' },
  { role: 'assistant', content: 'Paris.' },
  { role: 'user', content: 'And of Italy?' },
] as const;

describe('model chat templates', () => {
  it('renders the Llama-2-chat template (it ignores add_generation_prompt)', () => {
    const f = createChatFormatter(llama2Config, llama);
    expect(f).toMatchObject({ hasTemplate: true, templateSource: 'tokenizer_config', fallback: null, templateName: 'default' });
    const expected =
      '<s>[INST] <<SYS>>\nYou are a concise assistant.\n<</SYS>>\n\nWhat is the capital of France? [/INST] Paris. </s>' +
      '<s>[INST] And of Italy? [/INST]';
    expect(f.render(conversation)).toBe(expected);
    expect(f.render(conversation, { addGenerationPrompt: false })).toBe(expected);
    expect(f.render([{ role: 'user', content: '  Hi  ' }])).toBe('<s>[INST] Hi [/INST]');
  });

  it('renders the Qwen2.5 ChatML template, with its default system prompt when none is given', () => {
    const f = createChatFormatter(qwenConfig, bareTokenizer);
    const turns =
      '<|im_start|>user\nWhat is the capital of France?<|im_end|>\n' +
      '<|im_start|>assistant\nParis.<|im_end|>\n' +
      '<|im_start|>user\nAnd of Italy?<|im_end|>\n';
    const system = '<|im_start|>system\nYou are a concise assistant.<|im_end|>\n';
    expect(f.render(conversation)).toBe(`${system}${turns}<|im_start|>assistant\n`);
    expect(f.render(conversation, { addGenerationPrompt: false })).toBe(system + turns);
    expect(f.render(conversation.slice(1), { addGenerationPrompt: false })).toBe(
      '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' + turns,
    );
  });

  it('renders the SmolLM2 ChatML template', () => {
    const f = createChatFormatter({ chat_template: SMOLLM2_TEMPLATE }, bareTokenizer);
    expect(f.render([{ role: 'user', content: 'Hi' }])).toBe(
      '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' +
        '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(f.render(conversation, { addGenerationPrompt: false })).toBe(
      '<|im_start|>system\nYou are a concise assistant.<|im_end|>\n' +
        '<|im_start|>user\nWhat is the capital of France?<|im_end|>\n' +
        '<|im_start|>assistant\nParis.<|im_end|>\n<|im_start|>user\nAnd of Italy?<|im_end|>\n',
    );
  });

  it('renders the Llama-3 template, with bos_token given as an AddedToken object', () => {
    const f = createChatFormatter(llama3Config, bareTokenizer);
    const turns =
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a concise assistant.<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of France?<|eot_id|>' +
      '<|start_header_id|>assistant<|end_header_id|>\n\nParis.<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\nAnd of Italy?<|eot_id|>';
    expect(f.render(conversation)).toBe(`${turns}<|start_header_id|>assistant<|end_header_id|>\n\n`);
    expect(f.render(conversation, { addGenerationPrompt: false })).toBe(turns);
  });

  it('passes the other special tokens, and takes BOS/EOS from the tokenizer when the config omits them', () => {
    const source = '{{ bos_token }}|{{ eos_token }}|{{ unk_token }}|{{ pad_token }}|{{ additional_special_tokens | join(",") }}';
    const config = { unk_token: { content: '<unk>' }, pad_token: '<pad>', additional_special_tokens: ['<a>', { content: '<b>' }] };
    expect(createChatFormatter({ ...config, chat_template: source }, llama).render([{ role: 'user', content: 'x' }])).toBe(
      '<s>|</s>|<unk>|<pad>|<a>,<b>',
    );
  });

  it('accepts tokenizer_config.json as text', () => {
    expect(createChatFormatter(JSON.stringify(llama3Config), bareTokenizer).render([{ role: 'user', content: 'Hi' }])).toBe(
      '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });

  it('compiles the template once per formatter', () => {
    const before = compiled.count;
    const f = createChatFormatter(llama3Config, bareTokenizer);
    for (let i = 0; i < 3; i++) f.render(conversation);
    expect(compiled.count - before).toBe(1);
  });
});

describe('list-form chat_template', () => {
  it("uses the entry named 'default'", () => {
    const config = {
      ...llama3Config,
      chat_template: [
        { name: 'tool_use', template: 'TOOLS' },
        { name: 'default', template: LLAMA3_TEMPLATE },
        { name: 'rag', template: 'RAG' },
      ],
    };
    const f = createChatFormatter(config, bareTokenizer);
    expect(f.templateName).toBe('default');
    expect(f.render([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: false })).toBe(
      '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>',
    );
  });

  it('fails when no entry is the default, or an entry is malformed', () => {
    expect(() => createChatFormatter({ chat_template: [{ name: 'tool_use', template: 'x' }] }, bareTokenizer)).toThrow(
      /no "default" template \(it has "tool_use"\)/,
    );
    expect(() => createChatFormatter({ chat_template: [{ name: 'default' }] }, bareTokenizer)).toThrow(ChatTemplateError);
    expect(() => createChatFormatter({ chat_template: 42 }, bareTokenizer)).toThrow(ChatTemplateError);
    expect(() => createChatFormatter('{not json', bareTokenizer)).toThrow(/not valid JSON/);
  });
});

describe('template errors', () => {
  it('surfaces raise_exception as a ChatTemplateError carrying the template message', () => {
    const f = createChatFormatter(llama2Config, llama);
    const message = 'Conversation roles must alternate user/assistant/user/assistant/...';
    let error: unknown;
    try {
      f.render([
        { role: 'user', content: 'a' },
        { role: 'user', content: 'b' },
      ]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ChatTemplateError);
    expect(error).toMatchObject({ templateName: 'default', jinjaMessage: message });
    expect((error as Error).message).toContain(message);
  });

  it('reports a template that does not compile when the formatter is created', () => {
    let error: unknown;
    try {
      createChatFormatter({ chat_template: [{ name: 'default', template: '{% if %}' }] }, bareTokenizer);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ChatTemplateError);
    expect(error).toMatchObject({ templateName: 'default' });
    expect((error as ChatTemplateError).jinjaMessage).toMatch(/\S/);
    expect((error as Error).message).toContain('does not compile');
  });

  it('reports a failure while rendering', () => {
    const f = createChatFormatter({ chat_template: '{{ messages | no_such_filter }}' }, bareTokenizer);
    expect(() => f.render([{ role: 'user', content: 'x' }])).toThrow(ChatTemplateError);
  });
});

describe('hostile templates are stopped by the render budget', () => {
  const hi: ChatMessageInput[] = [{ role: 'user', content: 'hi' }];
  function budgetError(template: string, options = {}): ChatTemplateError {
    const f = createChatFormatter({ chat_template: template }, bareTokenizer);
    const t0 = performance.now();
    let error: unknown;
    try {
      f.render(hi, options);
    } catch (e) {
      error = e;
    }
    expect(error, String(error)).toBeInstanceOf(ChatTemplateError);
    // Stopped by counting, not by running out: well under a second of work even on a loaded machine.
    expect(performance.now() - t0).toBeLessThan(10_000);
    return error as ChatTemplateError;
  }
  /** After each refusal a real template still renders. */
  const stillRenders = () => expect(createChatFormatter(llama2Config, llama).render(hi)).toBe('<s>[INST] hi [/INST]');

  it('range(1000000000) is refused before the list is built (it used to kill Node)', () => {
    expect(budgetError('{% for i in range(1000000000) %}{{ i }}{% endfor %}').message).toMatch(/more than 1,000,000 steps/);
    stillRenders();
  });

  it('nested loops with empty bodies are charged per item and stop', () => {
    budgetError('{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}');
    stillRenders();
  });

  it('output past maxChars is refused as soon as it is produced', () => {
    const error = budgetError("{% set ns = namespace(s='x') %}{% for i in range(30) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}", { maxChars: 100_000 });
    expect(error.message).toMatch(/more than 100,000 characters/);
    stillRenders();
  });

  it('a real template with tools renders within the budget, and strftime_now and raise_exception still work', () => {
    const f = createChatFormatter({ chat_template: "{{ strftime_now('%Y') }}{% for t in tools %}|{{ t.name }}{% endfor %}" }, bareTokenizer);
    expect(f.render(hi, { tools: [{ name: 'a' }, { name: 'b' }] })).toBe(`${new Date().getFullYear()}|a|b`);
  });
});

describe('fallback formats', () => {
  it('uses a plain transcript for stories260K, a base model without a chat template', () => {
    const f = createChatFormatter(storiesConfigText, stories);
    expect(f).toMatchObject({ hasTemplate: false, templateSource: 'fallback', fallback: 'transcript', templateName: 'transcript-fallback' });
    const turns = 'You are a concise assistant.\n\nUser: What is the capital of France?\nAssistant: Paris.\nUser: And of Italy?\n';
    expect(f.render(conversation)).toBe(`${turns}Assistant:`);
    expect(f.render(conversation, { addGenerationPrompt: false })).toBe(turns);
    expect(f.render([...conversation, { role: 'system', content: 'Be brief.' }], { addGenerationPrompt: false })).toBe(
      `${turns}System: Be brief.\n`,
    );
  });

  it('puts BOS in front of the transcript, once, and no EOS after it', () => {
    const f = createChatFormatter(storiesConfigText, stories);
    const ids = encodeChat(f, stories, conversation);
    expect(ids[0]).toBe(1);
    expect(ids.filter((id) => id === 1)).toHaveLength(1);
    expect(ids).not.toContain(2);
    expect(ids.slice(1)).toEqual(stories.encode(f.render(conversation), { addSpecialTokens: false }));
  });

  it('uses the transcript without any tokenizer_config.json', () => {
    expect(createChatFormatter(undefined, stories).fallback).toBe('transcript');
  });

  it('uses ChatML when the vocabulary has <|im_start|> and <|im_end|>', () => {
    const json = JSON.parse(storiesJsonText) as { added_tokens: Json[] };
    const added = (id: number, content: string): Json => ({
      id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    });
    json.added_tokens.push(added(512, '<|im_start|>'), added(513, '<|im_end|>'));
    const tokenizer = loadTokenizer({ tokenizerJson: json, tokenizerConfig: storiesConfigText });
    const f = createChatFormatter(storiesConfigText, tokenizer);
    expect(f).toMatchObject({ hasTemplate: false, templateSource: 'fallback', fallback: 'chatml', templateName: 'chatml-fallback' });
    expect(f.render([{ role: 'user', content: 'Hi' }])).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    // The same text as the exported template renders, so the UI can show it.
    expect(createChatFormatter({ chat_template: CHATML_FALLBACK_TEMPLATE }, tokenizer).render(conversation)).toBe(
      f.render(conversation),
    );
    const ids = encodeChat(f, tokenizer, [{ role: 'user', content: 'Hi' }]);
    expect(ids.filter((id) => id === 512)).toHaveLength(2);
    expect(ids.filter((id) => id === 513)).toHaveLength(1);
    expect(ids[0]).toBe(1);
  });
});

describe('encodeChat', () => {
  const f = createChatFormatter(llama2Config, llama);

  it('gives the Llama-2 template exactly one BOS, though the template writes it and the tokenizer adds it', () => {
    const messages = [{ role: 'user', content: 'Hello world' }] as const;
    const ids = encodeChat(f, llama, messages);
    // <s> ▁[ INST ] ▁Hello ▁world ▁[ / INST ]
    expect(ids.slice(0, 4)).toEqual([1, 518, 25580, 29962]);
    expect(ids.filter((id) => id === 1)).toHaveLength(1);
    expect(llama.decode(ids)).toBe('<s> [INST] Hello world [/INST]');
    // Encoding the rendered text with the tokenizer's defaults is the mistake this guards against.
    expect(llama.encode(f.render(messages)).slice(0, 2)).toEqual([1, 1]);
  });

  it("keeps the Llama-2 template's BOS before each later [INST], and only one at the start", () => {
    const ids = encodeChat(f, llama, conversation);
    expect(ids[0]).toBe(1);
    expect(ids[1]).not.toBe(1);
    expect(ids.filter((id) => id === 1)).toHaveLength(2);
    expect(ids.filter((id) => id === 2)).toHaveLength(1);
  });

  it('adds BOS for a template that does not write it, when the tokenizer adds BOS', () => {
    const chatml = createChatFormatter({ ...llamaConfig, chat_template: CHATML_FALLBACK_TEMPLATE }, llama);
    const ids = encodeChat(chatml, llama, [{ role: 'user', content: 'Hi' }]);
    expect(ids[0]).toBe(1);
    expect(ids.filter((id) => id === 1)).toHaveLength(1);
  });

  it('validates the messages', () => {
    expect(() => encodeChat(f, llama, [])).toThrow(InvalidRequestError);
  });
});

describe('validateMessages', () => {
  const invalid = (messages: unknown): InvalidRequestError => {
    try {
      validateMessages(messages);
    } catch (e) {
      if (e instanceof InvalidRequestError) return e;
      throw e;
    }
    throw new Error('expected an InvalidRequestError');
  };

  it.each([
    ['not an array', { role: 'user', content: 'x' }, 'messages', /must be an array/],
    ['empty', [], 'messages', /at least one/],
    ['a null message', [null], 'messages[0]', /must be an object/],
    ['an unknown role', [{ role: 'user', content: 'x' }, { role: 'function', content: 'x' }], 'messages[1].role', /'system', 'user', 'assistant', 'tool'; got "function"/],
    ['a tool result without its call id', [{ role: 'user', content: 'x' }, { role: 'tool', content: 'x' }], 'messages[1].tool_call_id', /must be a string/],
    ['a missing role', [{ content: 'x' }], 'messages[0].role', /got nothing/],
    ['missing content', [{ role: 'user' }], 'messages[0].content', /string or an array/],
    ['numeric content', [{ role: 'system', content: 3 }], 'messages[0].content', /got a number/],
    ['an empty user message', [{ role: 'system', content: '' }, { role: 'assistant', content: '' }, { role: 'user', content: '' }], 'messages[2].content', /must not be empty/],
    ['empty user parts', [{ role: 'user', content: [] }], 'messages[0].content', /must not be empty/],
    ['an image part', [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'image_url', image_url: {} }] }], 'messages[0].content[1].type', /only text/],
    ['a part without text', [{ role: 'user', content: [{ type: 'text' }] }], 'messages[0].content[0].text', /must be a string/],
    ['a hole in the array', [{ role: 'user', content: 'x' }, , { role: 'user', content: 'y' }], 'messages[1]', /must be an object/],
  ])('rejects %s', (_name, messages, param, message) => {
    const error = invalid(messages);
    expect(error.param).toBe(param);
    expect(error.type).toBe('invalid_request_error');
    expect(error.message).toMatch(message);
  });

  it('joins text parts with newlines and allows a conversation that ends with the assistant', () => {
    const messages: ChatMessageInput[] = [
      { role: 'user', content: [{ type: 'text', text: 'first' }, { type: 'text', text: 'second' }] },
      { role: 'assistant', content: 'Sure' },
    ];
    expect(validateMessages(messages)).toEqual([
      { role: 'user', content: 'first\nsecond' },
      { role: 'assistant', content: 'Sure' },
    ]);
    expect(createChatFormatter(llama2Config, llama).render(messages)).toBe('<s>[INST] first\nsecond [/INST] Sure </s>');
  });

  it('copies only role and content, and ignores inherited fields', () => {
    const parsed: unknown = JSON.parse('[{"role":"user","content":"hi","__proto__":{"polluted":true},"name":"x","tool_calls":[1]}]');
    const [message] = validateMessages(parsed);
    expect(Object.keys(message)).toEqual(['role', 'content']);
    expect(Object.getPrototypeOf(message)).toBe(Object.prototype);
    expect('polluted' in message).toBe(false);
    expect(invalid([Object.create({ role: 'user', content: 'inherited' })]).param).toBe('messages[0].role');
  });

  it('is applied by render', () => {
    const f = createChatFormatter(llama3Config, bareTokenizer);
    expect(() => f.render([{ role: 'user', content: '' }])).toThrow(InvalidRequestError);
  });
});
