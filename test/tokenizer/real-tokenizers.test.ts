/**
 * The three real tokenizers in ../shared/tokenizers (Qwen3 151k, Llama 3.1 128k, Gemma 3 262k entries) load
 * through loadTokenizer (Gemma's vocabulary used to overflow the stack), round-trip text, and produce the ids
 * an independent BPE encoder (independent-bpe.ts) derives from the raw vocabulary and merges, for plain text
 * and for their real chat templates with a system prompt, several turns and tools. Load CPU time and retained
 * heap are printed for the report; they are measurements, not assertions.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { createChatFormatter, encodeChat, type ChatMessageInput } from '../../src/chat/template';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/tokenizer';
import { validateMessages } from '../../src/chat/messages';
import { undecodableIds } from '../../src/model/load';
import { IndependentBpe, type RawTokenizerJson, type Style } from './independent-bpe';

const SHARED = resolve(import.meta.dirname, '../../../shared/tokenizers');

interface Case {
  name: string;
  vocabSize: number;
  style: Style;
  digits: number;
  /** system + two user turns around an assistant turn, as the model's own template writes it. */
  chat: string;
}

const CASES: Case[] = [
  {
    name: 'qwen3',
    vocabSize: 151669,
    style: 'byte-level',
    digits: 1,
    chat:
      '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n' +
      '<|im_start|>assistant\nHello! How can I help?<|im_end|>\n<|im_start|>user\nSay 42 twice.<|im_end|>\n<|im_start|>assistant\n',
  },
  {
    name: 'llama3_1',
    vocabSize: 128256,
    style: 'byte-level',
    digits: 3,
    chat:
      // The shared file's template is Llama 3's plain one (no date header, no tools), whatever its README says.
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>' +
      '<|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help?<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\nSay 42 twice.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
  },
  {
    name: 'gemma3',
    vocabSize: 262145,
    style: 'sentencepiece',
    digits: 1,
    chat:
      '<bos><start_of_turn>user\nYou are terse.\n\nHi there<end_of_turn>\n<start_of_turn>model\nHello! How can I help?<end_of_turn>\n' +
      '<start_of_turn>user\nSay 42 twice.<end_of_turn>\n<start_of_turn>model\n',
  },
];

const CONVERSATION: ChatMessageInput[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Hi there' },
  { role: 'assistant', content: 'Hello! How can I help?' },
  { role: 'user', content: 'Say 42 twice.' },
];

const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Get the current weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  },
];

const SAMPLES = [
  'Hello world',
  ' leading space and  double  spaces',
  "It's 2025: don't panic, we'll see 1234567 items.",
  'naïve café, Straße, Ελληνικά, русский',
  '你好，世界。日本語のテキスト',
  'emoji 🤗🚀 and a flag 🇫🇷',
  'tabs\tand\nnew\n\nlines\r\n',
  'code: for (let i = 0; i < n; i++) { sum += a[i]; }',
];

/** Forces a full GC so heap figures are retained memory (vitest's workers do not start with --expose-gc). */
function collect(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

function load(c: Case): { tokenizer: Tokenizer; raw: RawTokenizerJson; config: Record<string, unknown>; cpuMs: number; heapMiB: number } {
  const dir = resolve(SHARED, c.name);
  const text = readFileSync(resolve(dir, 'tokenizer.json'), 'utf8');
  const configText = readFileSync(resolve(dir, 'tokenizer_config.json'), 'utf8');
  collect();
  const heap0 = process.memoryUsage().heapUsed;
  const cpu0 = process.cpuUsage();
  const tokenizer = loadTokenizer({ tokenizerJson: text, tokenizerConfig: configText });
  const cpu = process.cpuUsage(cpu0);
  collect();
  const heapMiB = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
  return {
    tokenizer,
    raw: JSON.parse(text) as RawTokenizerJson,
    config: JSON.parse(configText) as Record<string, unknown>,
    cpuMs: (cpu.user + cpu.system) / 1000,
    heapMiB,
  };
}

describe.each(CASES)('$name tokenizer', (c) => {
  const { tokenizer, raw, config, cpuMs, heapMiB } = load(c);
  const bpe = new IndependentBpe(raw, c.style, c.digits);
  // The figures for the report: CPU time is robust to a loaded machine, wall time is not.
  console.log(`${c.name}: ${tokenizer.vocabSize} ids, loaded in ${cpuMs.toFixed(0)} ms CPU, ${heapMiB.toFixed(1)} MiB retained heap`);

  it('loads with every id of tokenizer.json', () => {
    expect(tokenizer.vocabSize).toBe(c.vocabSize);
  });

  it('encodes plain text to the ids the independent BPE derives from the vocabulary and merges', () => {
    for (const text of SAMPLES) expect(tokenizer.encode(text, { addSpecialTokens: false }), text).toEqual(bpe.encode(text));
  });

  it('decodes what it encodes back to the same text', () => {
    for (const text of SAMPLES) expect(tokenizer.decode(tokenizer.encode(text, { addSpecialTokens: false }))).toBe(text);
  });

  it('renders its real chat template (system, several turns) to the expected text and ids', () => {
    const formatter = createChatFormatter(config, tokenizer);
    expect(formatter.render(CONVERSATION)).toBe(c.chat);
    expect(encodeChat(formatter, tokenizer, CONVERSATION)).toEqual(bpe.encode(c.chat));
  });

  it('encodes a long text in pieces to exactly the ids of encoding it whole, and stops on abort', async () => {
    const text = (c.chat + SAMPLES.join('\n\n') + '\n').repeat(20);
    const whole = tokenizer.encode(text);
    expect(await tokenizer.encodeInPieces(text, { pieceChars: 97 })).toEqual(whole);
    expect(await tokenizer.encodeInPieces(text, { pieceChars: 1000, addSpecialTokens: false })).toEqual(tokenizer.encode(text, { addSpecialTokens: false }));
    const controller = new AbortController();
    const reason = new Error('stop');
    const pending = tokenizer.encodeInPieces(text, { pieceChars: 97, signal: controller.signal });
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });

  // Gemma 3's template trims contents and folds the system prompt into the first user turn; the tokenizer's
  // 262,145th id (<image_soft_token>) has an embedding row only in the multimodal models (vocab_size 262208),
  // not in the 270M and 1B ones (262144), whose engine refuses it in a prompt (landmines.test.ts).
  it.runIf(c.name === 'gemma3')('Gemma 3: a fixed conversation renders exactly as its template does, with one BOS; 262,145 ids against 262,144 or 262,208 rows', () => {
    const formatter = createChatFormatter(config, tokenizer);
    const conversation = validateMessages([
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: '  Hi there!\n' },
      { role: 'assistant', content: 'Hello. What do you need?  ' },
      { role: 'user', content: 'Name two primes.' },
    ]);
    const rendered =
      '<bos><start_of_turn>user\nYou are terse.\n\nHi there!<end_of_turn>\n' +
      '<start_of_turn>model\nHello. What do you need?<end_of_turn>\n' +
      '<start_of_turn>user\nName two primes.<end_of_turn>\n' +
      '<start_of_turn>model\n';
    expect(formatter.render(conversation)).toBe(rendered);
    const bos = tokenizer.tokenToId('<bos>');
    expect(bos).toBe(2);
    const ids = encodeChat(formatter, tokenizer, conversation);
    expect(ids).toEqual(bpe.encode(rendered));
    expect(ids.filter((id) => id === bos)).toEqual([bos]);
    expect(ids[0]).toBe(bos);
    // Plain text gets the tokenizer's BOS (add_bos_token), once.
    expect(tokenizer.encode('Hi there!').filter((id) => id === bos)).toEqual([bos]);

    expect(tokenizer.idToToken(262144)).toBe('<image_soft_token>');
    expect(undecodableIds(tokenizer, 262144)).toEqual([]);
    expect(undecodableIds(tokenizer, 262208)).toEqual(Array.from({ length: 262208 - 262145 }, (_, i) => 262145 + i));
  });

  it('renders its real chat template with tools, encoded to the independently derived ids', () => {
    const formatter = createChatFormatter(config, tokenizer);
    const messages: ChatMessageInput[] = [{ role: 'user', content: 'What is the weather in Paris?' }];
    const text = formatter.render(messages, { tools: TOOLS });
    // A template that knows tools (Qwen3's) writes the function's name and its parameter; the others ignore them.
    if (String(config.chat_template).includes('tools')) {
      expect(text).toContain('"name": "get_weather"');
      expect(text).toContain('"city"');
    }
    expect(text).toContain('What is the weather in Paris?');
    expect(tokenizer.encode(text, { addSpecialTokens: false })).toEqual(bpe.encode(text));
  });
});
