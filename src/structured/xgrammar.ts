/**
 * Loads xgrammar (@mlc-ai/web-xgrammar: the grammar engine of vLLM, SGLang and WebLLM, compiled to
 * WebAssembly) on first use, so pages that never ask for structured output never fetch or compile it. Its
 * WebAssembly needs `'wasm-unsafe-eval'` in a page's `script-src` when the page sets a CSP.
 *
 * The package ships one UMD file in a `"type": "module"` package: a browser bundler imports it (it then
 * fills `globalThis.xgrammar` or a default export), while Node's ESM loader refuses its `require`. In Node
 * the file is therefore compiled as the CommonJS script it is.
 */
import type * as XGrammar from '@mlc-ai/web-xgrammar';

export type XGrammarApi = Pick<typeof XGrammar, 'GrammarCompiler' | 'GrammarMatcher' | 'TokenizerInfo' | 'Grammar'>;

const isApi = (value: unknown): value is XGrammarApi =>
  typeof value === 'object' && value !== null && 'GrammarCompiler' in value && 'GrammarMatcher' in value;

interface NodeProcess {
  versions?: { node?: string };
  getBuiltinModule?(name: string): unknown;
}

function nodeProcess(): NodeProcess | undefined {
  const proc = (globalThis as { process?: NodeProcess }).process;
  return proc?.versions?.node && typeof proc.getBuiltinModule === 'function' ? proc : undefined;
}

/** The part of Node's CommonJS loader used here: a module object that compiles a file's text. */
interface CjsModule {
  exports: unknown;
  filename: string;
  paths: string[];
  _compile(code: string, filename: string): void;
}
interface CjsModuleClass {
  new (id: string): CjsModule;
  _nodeModulePaths(dir: string): string[];
}

/**
 * Node: the UMD file compiled by Node's own CommonJS loader, as if it were named .cjs (its emscripten part
 * imports node builtins dynamically, which only a real module context supports). Node ≥ 20.16 has
 * process.getBuiltinModule (package.json's engines asks ≥ 20.19), so no node: import reaches browser bundles.
 */
function loadInNode(proc: NodeProcess): XGrammarApi {
  const { createRequire, Module } = proc.getBuiltinModule!('node:module') as { createRequire(from: string): { resolve(id: string): string }; Module: CjsModuleClass };
  const { readFileSync } = proc.getBuiltinModule!('node:fs') as { readFileSync(path: string, encoding: 'utf8'): string };
  const { dirname } = proc.getBuiltinModule!('node:path') as { dirname(path: string): string };
  const file = createRequire(import.meta.url).resolve('@mlc-ai/web-xgrammar');
  const module = new Module(file);
  module.filename = file;
  module.paths = Module._nodeModulePaths(dirname(file));
  module._compile(readFileSync(file, 'utf8'), file);
  if (!isApi(module.exports)) throw new Error(`${file} did not export xgrammar's API`);
  return module.exports;
}

/** The smallest WebAssembly module: the magic number and version. */
const EMPTY_MODULE = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

/** Whether this page refuses to compile WebAssembly (a Content-Security-Policy without 'wasm-unsafe-eval'). */
export async function webAssemblyRefused(): Promise<boolean> {
  try {
    await WebAssembly.compile(EMPTY_MODULE);
    return false;
  } catch {
    return true;
  }
}

let loading: Promise<XGrammarApi> | undefined;

export function loadXGrammar(): Promise<XGrammarApi> {
  loading ??= (async () => {
    const proc = nodeProcess();
    if (proc) return loadInNode(proc);
    const mod: unknown = await import('@mlc-ai/web-xgrammar');
    const candidates = [mod, (mod as { default?: unknown }).default, (globalThis as { xgrammar?: unknown }).xgrammar];
    const api = candidates.find(isApi);
    if (!api) throw new Error('@mlc-ai/web-xgrammar loaded but its API was not found');
    return api;
  })();
  loading.catch(() => (loading = undefined));
  return loading;
}
