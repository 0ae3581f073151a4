/**
 * Constrained decoding with xgrammar: one engine per loaded model holds the tokenizer's vocabulary as
 * xgrammar sees it and a compiler that caches compiled grammars; each request gets a matcher that gives the
 * tokens allowed next as a bitmask (from xgrammar's per-grammar cache of context-independent tokens, so a
 * step walks only the few tokens whose fate depends on the parser stack). The mask is applied to the logits
 * on the CPU before every processor: tokens that would leave the output not a valid prefix get -Infinity,
 * and the stop tokens are allowed only once the grammar is complete.
 */
import type { CompiledGrammar, GrammarCompiler, GrammarMatcher, TokenizerInfo } from '@mlc-ai/web-xgrammar';
import { InvalidRequestError } from '../chat/messages';
import type { Tokenizer } from '../tokenizer/tokenizer';
import type { GrammarSpec } from './response-format';
import { loadXGrammar, webAssemblyRefused, type XGrammarApi } from './xgrammar';

/** One line (indent -1), ", " and ": " separators, no properties beyond the schema's. */
const JSON_LAYOUT = [-1, [', ', ': '], true] as [number, [string, string], boolean];

interface Compiler {
  api: XGrammarApi;
  info: TokenizerInfo;
  compiler: GrammarCompiler;
}

export class GrammarEngine {
  private setup: Promise<Compiler> | undefined;

  constructor(
    private readonly tokenizer: Tokenizer,
    /** The model's vocabulary (logits per step), which may be padded past the tokenizer's. */
    private readonly vocabSize: number,
  ) {}

  /**
   * The vocabulary in the tokenizer's own spelling, which xgrammar decodes as `vocabType` says. Special
   * tokens and padded ids are empty strings, which xgrammar never allows (stop tokens are named separately).
   */
  private encodedVocab(): string[] {
    const vocab = new Array<string>(this.vocabSize).fill('');
    for (let id = 0; id < Math.min(this.vocabSize, this.tokenizer.vocabSize); id++) {
      if (!this.tokenizer.specialTokenIds.has(id)) vocab[id] = this.tokenizer.idToToken(id) ?? '';
    }
    return vocab;
  }

  private compiler(): Promise<Compiler> {
    this.setup ??= (async () => {
      const api = await loadXGrammar();
      const { vocabType } = this.tokenizer;
      const info = await api.TokenizerInfo.createTokenizerInfo(this.encodedVocab(), vocabType, false, this.vocabSize, [...this.tokenizer.eosTokenIds]);
      return { api, info, compiler: await api.GrammarCompiler.createGrammarCompiler(info, true) };
    })();
    this.setup.catch(() => (this.setup = undefined));
    return this.setup;
  }

  /**
   * Compiles (or finds in the cache) the grammar of `spec`. @throws InvalidRequestError naming `param` when
   * xgrammar rejects the schema or grammar (xgrammar prints its reason to the console).
   */
  async compile(spec: GrammarSpec, param: string): Promise<CompiledGrammar> {
    const { api, compiler } = await this.compiler().catch(async (e: unknown) => {
      // xgrammar's own report of a refused compile is an emscripten abort that names no remedy.
      if (!(await webAssemblyRefused())) throw e;
      throw new InvalidRequestError(
        `${param} needs the grammar engine (xgrammar, WebAssembly), which this page's Content-Security-Policy refuses: its script-src must allow 'wasm-unsafe-eval'`,
        param,
      );
    });
    try {
      switch (spec.kind) {
        // One line, no free whitespace: a small model cannot wander into endless spaces; extra properties only where the schema allows them.
        case 'json_schema':
          return await compiler.compileJSONSchema(spec.schema, false, ...JSON_LAYOUT);
        case 'tagged_json': {
          // The schema's grammar with its root renamed, between the two texts (xgrammar's structural tags
          // would allow free whitespace inside the JSON).
          const json = await api.Grammar.fromJSONSchema(spec.schema, false, ...JSON_LAYOUT);
          const rules = json.toString().replace(/^root ::=/m, 'tagged_json_value ::=').replace(/\broot\b(?! ::=)/g, 'tagged_json_value');
          json.dispose();
          return await compiler.compileGrammar(`root ::= ${JSON.stringify(spec.begin)} tagged_json_value ${JSON.stringify(spec.end)}\n${rules}`);
        }
        case 'ebnf':
          return await compiler.compileGrammar(spec.grammar);
        case 'structural_tag':
          return await compiler.compileStructuralTag(spec.tag);
      }
    } catch (e) {
      const what = spec.kind === 'json_schema' ? 'JSON schema' : spec.kind === 'ebnf' ? 'grammar' : 'format';
      throw new InvalidRequestError(`${param}: xgrammar cannot compile this ${what} (${e instanceof Error ? e.message : String(e)}; its reason is printed to the console)`, param);
    }
  }

  /** A matcher for one request; `stopTokenIds` end it (allowed only where the grammar is complete). */
  async constrain(spec: GrammarSpec, param: string, stopTokenIds: readonly number[]): Promise<GrammarConstraint> {
    const compiled = await this.compile(spec, param);
    const { api } = await this.compiler();
    return new GrammarConstraint(await api.GrammarMatcher.createGrammarMatcher(compiled, [...stopTokenIds]), compiled);
  }

  dispose(): void {
    const setup = this.setup;
    this.setup = undefined;
    void setup?.then(({ info, compiler }) => {
      compiler.dispose();
      info.dispose();
    }, () => undefined);
  }
}

/** One request's grammar state. */
export class GrammarConstraint {
  constructor(
    private readonly matcher: GrammarMatcher,
    private readonly compiled: CompiledGrammar,
  ) {}

  /** Sets the logits of every token the grammar does not allow next to -Infinity. */
  async maskLogits(logits: Float32Array): Promise<void> {
    const mask = await this.matcher.getNextTokenBitmask();
    for (let word = 0; word < mask.length; word++) {
      const bits = mask[word];
      if (bits === -1) continue;
      const base = word * 32;
      const end = Math.min(base + 32, logits.length);
      for (let id = base; id < end; id++) if (((bits >>> (id - base)) & 1) === 0) logits[id] = -Infinity;
    }
  }

  /** Advances past `token`, which the mask allowed. */
  accept(token: number): void {
    if (!this.matcher.acceptToken(token)) throw new Error(`the grammar rejected token ${token}, which its mask allowed`);
  }

  /** A stop token was accepted: the output is complete. */
  get terminated(): boolean {
    return this.matcher.isTerminated();
  }

  dispose(): void {
    this.matcher.dispose();
    this.compiled.dispose();
  }
}
