#!/usr/bin/env node
// The package's type declarations: `node src/build/declarations.mjs``node src/build/declarations.mjs` writes dist-npm/types/**/*.d.ts for the
// package entries with TypeScript, then gives every relative import its file (`./engine/engine` becomes
// `./engine/engine.js`, a folder its `/index.js`), which moduleResolution node16/nodenext requires.
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = resolve(fileURLToPath(import.meta.url), '../../..');
const outDir = join(root, 'dist-npm/types');
const entries = ['src/index.ts', 'src/node/index.ts', 'src/worker/index.ts', 'src/embed/package.ts'];

const configPath = join(root, 'tsconfig.json');
const { config } = ts.readConfigFile(configPath, ts.sys.readFile);
const { options } = ts.parseJsonConfigFileContent(config, ts.sys, root);
const program = ts.createProgram(
  entries.map((entry) => join(root, entry)),
  { ...options, noEmit: false, declaration: true, emitDeclarationOnly: true, rootDir: join(root, 'src'), outDir },
);

const specifier = /((?:from|import)\s*\(?\s*)(['"])(\.{1,2}\/[^'"]*)\2/g;

/** `spec` as imported from `file` (a source path), with its file named: `x.js` or `x/index.js`. */
function fullSpecifier(file, spec) {
  const base = resolve(dirname(file), spec);
  if (existsSync(`${base}.ts`)) return `${spec}.js`;
  if (existsSync(join(base, 'index.ts'))) return `${spec}/index.js`;
  throw new Error(`${relative(root, file)}: cannot resolve ${spec} to a source file`);
}

const result = program.emit(undefined, (fileName, text) => {
  const source = join(root, 'src', relative(outDir, fileName).replace(/\.d\.ts$/, '.ts'));
  ts.sys.writeFile(fileName, text.replace(specifier, (_, lead, quote, spec) => `${lead}${quote}${fullSpecifier(source, spec)}${quote}`));
});
const errors = ts.getPreEmitDiagnostics(program).concat(result.diagnostics);
if (errors.length > 0) {
  console.error(ts.formatDiagnosticsWithColorAndContext(errors, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => '\n' }));
  process.exit(1);
}
