/**
 * The `webgpu-llm` command: `generate` (a prompt, or `--chat` for a chat loop with the model's template) and
 * `serve` (the OpenAI-compatible HTTP server). Text goes to stdout; speeds, errors and usage go to stderr.
 * Exit codes: 0 done, 1 the run failed (model, GPU, I/O), 2 bad usage (unknown command or option, bad value).
 */
import { createInterface } from 'node:readline';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Engine } from '../engine/engine';
import type { ChatCompletionMessageParam, GenerationResult } from '../engine/types';
import { describeError } from '../errors';
import { createEngine } from '../node/index';
import { serve } from '../node/serve';
import { InvalidOptionError } from '../sampling/options';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

const MODEL_OPTIONS = `  --model <folder|URL>   a Hugging Face-layout model: a folder on disk or an http(s) URL (required)
  --context N            context length in tokens (default: the model's, capped by the GPU)
  --dtype f32|f16|q8|q4  weight format on the GPU (default: the checkpoint's)
A gated Hugging Face repo (Llama 3.2, Gemma 3) needs its license accepted and an access token in HF_TOKEN
(an environment variable, not an option: command lines are visible to every user of the machine); the token
is sent to https://huggingface.co only.`;

const USAGE: Record<string, string> = {
  main: `usage: webgpu-llm <command> [options]

commands:
  generate   continue a prompt, or chat with --chat
  serve      OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions, /v1/models)

Run \`webgpu-llm <command> --help\` for its options.
Exit codes: 0 done, 1 the run failed (model, GPU, I/O), 2 bad usage.
The GPU comes from Dawn through Vulkan; VK_ICD_FILENAMES picks the driver (e.g. a software one with no GPU).`,
  generate: `usage: webgpu-llm generate --model <folder|URL> [--prompt TEXT | --chat] [options]

${MODEL_OPTIONS}
  --prompt TEXT          the text to continue (default: empty, the model starts from BOS)
  --chat                 interactive chat on stdin with the model's chat template (empty line or EOF ends)
  --system TEXT          a system message for --chat
  --temperature T        0 is greedy (default: the model's generation_config, else 1)
  --top-p P              nucleus sampling, 0 < P <= 1
  --top-k K              sample from the K most likely tokens
  --seed N               seed for sampling, to reproduce a run
  --max-tokens N         new tokens at most (default 128)
  --stop TEXT            stop before this text; repeat for several
  -h, --help             this help`,
  serve: `usage: webgpu-llm serve --model <folder|URL> [--port N] [--host ADDR] [options]

${MODEL_OPTIONS}
  --port N               default 8080 (0 picks a free one)
  --host ADDR            default 127.0.0.1; 0.0.0.0 exposes the model to the network with no authentication
  --max-body-bytes N     largest request body (default 4194304)
  -h, --help             this help

Point an OpenAI client at http://127.0.0.1:8080/v1 (any API key). Ctrl-C stops the server.`,
};

const MODEL_ARGS = {
  model: { type: 'string' },
  context: { type: 'string' },
  dtype: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const GENERATE_ARGS = {
  ...MODEL_ARGS,
  prompt: { type: 'string' },
  chat: { type: 'boolean' },
  system: { type: 'string' },
  temperature: { type: 'string' },
  'top-p': { type: 'string' },
  'top-k': { type: 'string' },
  seed: { type: 'string' },
  'max-tokens': { type: 'string' },
  stop: { type: 'string', multiple: true },
} as const satisfies ParseArgsConfig['options'];

const SERVE_ARGS = {
  ...MODEL_ARGS,
  port: { type: 'string' },
  host: { type: 'string' },
  'max-body-bytes': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

/** A command line the user must fix: its message and the command's usage go to stderr, exit code 2. */
class UsageError extends Error {}

function integer(name: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new UsageError(`--${name} must be an integer >= ${min}, got "${text}"`);
  return value;
}

function number(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw new UsageError(`--${name} must be a number, got "${text}"`);
  return value;
}

function dtype(text: string | undefined): 'f32' | 'f16' | 'q8' | 'q4' | undefined {
  if (text === undefined || text === 'f32' || text === 'f16' || text === 'q8' || text === 'q4') return text;
  throw new UsageError(`--dtype must be f32, f16, q8 or q4, got "${text}"`);
}

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    // node:util's parse errors (unknown option, missing value) carry an ERR_PARSE_ARGS_* code.
    if ((e as { code?: unknown }).code?.toString().startsWith('ERR_PARSE_ARGS')) throw new UsageError((e as Error).message);
    throw e;
  }
}

async function loadEngine(values: { model?: string; context?: string; dtype?: string }): Promise<Engine> {
  if (!values.model) throw new UsageError('--model is required');
  const hfToken = process.env.HF_TOKEN?.trim() || undefined;
  const options = { contextLength: integer('context', values.context, 2), dtype: dtype(values.dtype), hfToken };
  return createEngine(values.model, options);
}

function reportSpeed(engine: Engine, result: GenerationResult): void {
  const { usage, timings } = result;
  console.error(
    `[${engine.backend.device}] ${usage.prompt_tokens} prompt tokens at ${timings.prefill_tokens_per_second.toFixed(1)} tok/s, ` +
      `${usage.completion_tokens} new at ${timings.decode_tokens_per_second.toFixed(1)} tok/s (${result.finishReason})`,
  );
}

async function generate(args: string[]): Promise<number> {
  const values = parse(args, GENERATE_ARGS);
  if (values.help) return help('generate', EXIT_OK);
  if (values.chat && values.prompt !== undefined) throw new UsageError('--prompt and --chat cannot be used together');
  const sampling = {
    temperature: number('temperature', values.temperature),
    top_p: number('top-p', values['top-p']),
    top_k: integer('top-k', values['top-k'], 0),
    seed: integer('seed', values.seed, 0),
    max_tokens: integer('max-tokens', values['max-tokens'], 1) ?? 128,
    stop: values.stop,
  };
  const engine = await loadEngine(values);
  try {
    // Options are checked before any output, so a bad value is a usage error.
    engine.resolveOptions(sampling);
    if (values.chat) return await chat(engine, sampling, values.system);
    const prompt = values.prompt ?? '';
    const bos = engine.tokenizer.bosTokenId;
    if (prompt.length === 0 && bos === null) throw new UsageError('--prompt is required: this model has no BOS token to start from');
    const stream = engine.generate(prompt.length > 0 ? prompt : [bos!], sampling);
    process.stdout.write(prompt);
    for await (const delta of stream) process.stdout.write(delta.text);
    process.stdout.write('\n');
    reportSpeed(engine, await stream.result);
    return EXIT_OK;
  } finally {
    await engine.dispose();
  }
}

/** Reads user turns from stdin and streams the replies; the whole conversation goes to the model each turn. */
async function chat(engine: Engine, sampling: Record<string, unknown>, system: string | undefined): Promise<number> {
  const messages: ChatCompletionMessageParam[] = system ? [{ role: 'system', content: system }] : [];
  // Iterating the lines (not question()) keeps lines that arrive together, as from a pipe.
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  try {
    process.stderr.write('> ');
    for await (const line of lines) {
      if (line.trim() === '') break;
      messages.push({ role: 'user', content: line });
      let reply = '';
      for await (const chunk of await engine.chat.completions.create({ ...sampling, messages, stream: true })) {
        const text = chunk.choices[0].delta.content ?? '';
        reply += text;
        process.stdout.write(text);
      }
      process.stdout.write('\n');
      messages.push({ role: 'assistant', content: reply });
      process.stderr.write('> ');
    }
    return EXIT_OK;
  } finally {
    lines.close();
  }
}

async function serveCommand(args: string[]): Promise<number> {
  const values = parse(args, SERVE_ARGS);
  if (values.help) return help('serve', EXIT_OK);
  const port = integer('port', values.port, 0) ?? 8080;
  if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
  const maxBodyBytes = integer('max-body-bytes', values['max-body-bytes'], 1);
  const engine = await loadEngine(values);
  const server = await serve(engine, { port, host: values.host, maxBodyBytes });
  console.error(`[${engine.backend.device}] serving ${engine.modelId} at ${server.url} (Ctrl-C stops)`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  await engine.dispose();
  return EXIT_OK;
}

function help(command: string, code: number): number {
  (code === EXIT_OK ? console.log : console.error)(USAGE[command]);
  return code;
}

/** Runs the command line `argv` (without node and the script) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'generate':
        return await generate(rest);
      case 'serve':
        return await serveCommand(rest);
      case 'help':
      case '--help':
      case '-h':
        return help(rest[0] && USAGE[rest[0]] ? rest[0] : 'main', EXIT_OK);
      default:
        console.error(command === undefined ? 'webgpu-llm: no command given' : `webgpu-llm: unknown command "${command}"`);
        return help('main', EXIT_USAGE);
    }
  } catch (e) {
    const usage = command === 'generate' || command === 'serve' ? command : 'main';
    if (e instanceof UsageError || e instanceof InvalidOptionError) {
      console.error(`webgpu-llm ${usage}: ${e.message}`);
      return help(usage, EXIT_USAGE);
    }
    const { title, detail, hint } = describeError(e);
    console.error(`webgpu-llm ${usage}: ${title}: ${detail}${hint ? `\n${hint}` : ''}`);
    return EXIT_FAILED;
  }
}
