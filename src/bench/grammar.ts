/**
 * `npm run bench:grammar`: what constrained decoding costs with a large vocabulary (the real 151,669-token Qwen3
 * tokenizer, padded to Qwen3's 151,936 logits), on the CPU only. Reports the one-time setup (xgrammar's view of
 * the vocabulary), the compile time of a 20-property JSON schema (cold, then cached) and of a string with a
 * maxLength (xgrammar's slow case), and per token the time
 * to get the mask and apply it to a logits row, while a valid reply is fed token by token. Options:
 * --tokenizer=<folder with tokenizer.json> --vocab=<logits per row>. Prints a table and writes
 * bench-output/grammar.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { GrammarEngine } from '../structured/grammar-engine';
import { schemaText } from '../structured/response-format';
import { loadTokenizer } from '../tokenizer/tokenizer';

/** 20 properties of every kind the schema tests use. */
function twentyPropertySchema(): Record<string, unknown> {
  const kinds = [
    { type: 'string' },
    { type: 'integer', minimum: 0, maximum: 100 },
    { type: 'boolean' },
    { enum: ['red', 'green', 'blue'] },
    { type: 'array', items: { type: 'string' }, maxItems: 4 },
    { type: 'object', properties: { x: { type: 'integer' }, y: { type: 'string', pattern: '^[a-z]+$' } }, required: ['x'], additionalProperties: false },
    { anyOf: [{ type: 'string' }, { type: 'null' }] },
  ];
  const properties = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`field_${i}`, kinds[i % kinds.length]]));
  return { type: 'object', properties, required: Object.keys(properties), additionalProperties: false };
}

/** A value of that schema. */
function twentyPropertyValue(): Record<string, unknown> {
  const values = ['The quick brown fox, naïve café 🦊', 42, true, 'green', ['a', 'bb', 'ccc'], { x: 7, y: 'abc' }, null];
  return Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`field_${i}`, values[i % values.length]]));
}

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { tokenizer: { type: 'string', default: '../shared/tokenizers/qwen3' }, vocab: { type: 'string', default: '151936' } },
  });
  const dir = resolve(values.tokenizer);
  const tokenizer = loadTokenizer({
    tokenizerJson: readFileSync(join(dir, 'tokenizer.json'), 'utf8'),
    tokenizerConfig: readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'),
  });
  const vocab = Number(values.vocab);
  const engine = new GrammarEngine(tokenizer, vocab);
  const eos = [...tokenizer.eosTokenIds];
  const schema = schemaText(twentyPropertySchema(), 'schema');
  const spec = { kind: 'json_schema' as const, schema };

  let t = performance.now();
  (await engine.compile({ kind: 'json_schema', schema: '{"type":"boolean"}' }, 'schema')).dispose();
  const setupMs = performance.now() - t;
  t = performance.now();
  (await engine.compile(spec, 'schema')).dispose();
  const compileMs = performance.now() - t;
  t = performance.now();
  (await engine.compile(spec, 'schema')).dispose();
  const cachedCompileMs = performance.now() - t;
  // xgrammar unrolls a bounded repetition into one state per count, each with its own token-mask cache.
  t = performance.now();
  (await engine.compile({ kind: 'json_schema', schema: '{"type":"string","maxLength":40}' }, 'schema')).dispose();
  const maxLengthCompileMs = performance.now() - t;

  // The grammar's own spelling of the value: one line, ", " and ": " separators.
  const reply = JSON.stringify(twentyPropertyValue()).replace(/","|",|,"|":|\],|\},|e,|l,|\d,/g, (m) => m.replace(',', ', ').replace(':', ': '));
  const ids = [...tokenizer.encode(reply, { addSpecialTokens: false }), eos[0]];
  const constraint = await engine.constrain(spec, 'schema', eos);
  const logits = new Float32Array(vocab);
  const maskMs: number[] = [];
  let rejected = 0;
  for (const id of ids) {
    logits.fill(0);
    const t0 = performance.now();
    await constraint.maskLogits(logits);
    maskMs.push(performance.now() - t0);
    if (logits[id] === -Infinity) rejected++;
    constraint.accept(id);
  }
  const terminated = constraint.terminated;
  constraint.dispose();
  engine.dispose();

  const later = maskMs.slice(1).sort((a, b) => a - b);
  const result = {
    tokenizer: dir,
    vocab,
    vocabType: tokenizer.vocabType,
    setup_ms: setupMs,
    compile_20_properties_ms: compileMs,
    compile_cached_ms: cachedCompileMs,
    compile_string_maxLength_40_ms: maxLengthCompileMs,
    reply_tokens: ids.length,
    first_mask_ms: maskMs[0],
    mask_median_ms: quantile(later, 0.5),
    mask_p90_ms: quantile(later, 0.9),
    mask_max_ms: later.at(-1),
    tokens_rejected: rejected,
    terminated,
  };
  console.table(Object.entries(result).map(([k, v]) => ({ measure: k, value: typeof v === 'number' ? Number(v.toFixed(3)) : v })));
  mkdirSync('bench-output', { recursive: true });
  writeFileSync('bench-output/grammar.json', JSON.stringify(result, null, 2));
  return rejected === 0 && terminated ? 0 : 1;
}
