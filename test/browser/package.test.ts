/**
 * The npm package as a user gets it: `npm pack`, then each example (examples/) copied to a temp folder and
 * installed from the tarball and the local npm cache with no network (`npm ci --offline`, its lockfile made
 * from this repository's). The Vite app is built, served and driven in Chromium to the stories260K greedy
 * golden; the Node chat runs on Dawn; the types check under moduleResolution bundler and node16.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { preview } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../src/dev/browser';
import { serveModels } from '../../src/dev/serve-models';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';
import { greedyGolden, modelPath, readModelText } from '../models';

interface LockEntry {
  version: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [field: string]: unknown;
}

const rootLock = JSON.parse(readFileSync(resolve(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
const packageJson = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };

/** Where Node would find `name` from the package at lock path `from` (`node_modules/a/node_modules/b`, …, or top level). */
function locate(from: string, name: string): string | undefined {
  for (let at = from; ; at = at.slice(0, Math.max(at.lastIndexOf('/node_modules/'), 0))) {
    const path = at ? `${at}/node_modules/${name}` : `node_modules/${name}`;
    if (rootLock.packages[path]) return path;
    if (!at) return undefined;
  }
}

/** The lock entries of `names` and everything they need, as this repository's lockfile pins them. */
function lockClosure(names: string[]): Record<string, LockEntry> {
  const out: Record<string, LockEntry> = {};
  const queue = names.map((name) => ({ from: '', name }));
  while (queue.length > 0) {
    const { from, name } = queue.pop()!;
    const path = locate(from, name);
    if (!path || out[path]) continue;
    const entry = rootLock.packages[path];
    out[path] = entry;
    const peers = Object.keys(entry.peerDependencies ?? {}).filter((p) => !entry.peerDependenciesMeta?.[p]?.optional);
    for (const dep of [...Object.keys(entry.dependencies ?? {}), ...Object.keys(entry.optionalDependencies ?? {}), ...peers]) queue.push({ from: path, name: dep });
  }
  return out;
}

/**
 * Copies examples/<name> to `dir`, points its dependency at the tarball and writes a lockfile, so `npm ci
 * --offline` takes every package from the cache (plain `npm install` would ask the registry for versions).
 */
function prepareExample(name: string, dir: string, tarball: string, devDeps: string[]): void {
  cpSync(resolve(ROOT, 'examples', name), dir, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const spec = `file:${tarball}`;
  manifest.dependencies[packageJson.name] = spec;
  manifest.devDependencies = { ...manifest.devDependencies };
  for (const dep of devDeps) manifest.devDependencies[dep] ??= rootLock.packages[`node_modules/${dep}`].version;
  writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest, null, 2));
  const own = rootLock.packages[''] as unknown as { dependencies: Record<string, string>; optionalDependencies: Record<string, string> };
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
  const lock = {
    name: manifest.name,
    lockfileVersion: 3,
    requires: true,
    packages: {
      '': { name: manifest.name, dependencies: manifest.dependencies, devDependencies: manifest.devDependencies },
      [`node_modules/${packageJson.name}`]: {
        version: packageJson.version,
        resolved: spec,
        integrity,
        dependencies: own.dependencies,
        optionalDependencies: own.optionalDependencies,
      },
      ...lockClosure([...Object.keys(own.dependencies), ...Object.keys(own.optionalDependencies), ...devDeps]),
    },
  };
  writeFileSync(join(dir, 'package-lock.json'), JSON.stringify(lock, null, 2));
  execFileSync('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: dir, stdio: 'pipe' });
}

let work: string;
let tarball: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'webgpu-llm-package-'));
  const packed = execFileSync('npm', ['pack', '--pack-destination', work, '--silent'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  tarball = join(work, packed.trim().split('\n').at(-1)!);
}, 300_000);
afterAll(() => work && rmSync(work, { recursive: true, force: true }));

/** The golden continuation of `prompt`: its tokens must be the golden's first ones, the rest is what follows. */
function goldenAfter(prompt: string, newTokens: number): string {
  const tokenizer = loadTokenizer({ tokenizerJson: readModelText('stories260K', 'tokenizer.json'), tokenizerConfig: readModelText('stories260K', 'tokenizer_config.json') });
  const golden = greedyGolden();
  const promptIds = tokenizer.encode(prompt);
  const start = promptIds.length - golden.prompt_ids.length;
  expect(promptIds).toEqual([...golden.prompt_ids, ...golden.greedy_ids.slice(0, start)]);
  return tokenizer.decode(golden.greedy_ids.slice(0, start + newTokens), { skipSpecialTokens: true });
}

describe('the packed package', () => {
  it('the Vite example, installed from the tarball, builds and streams the greedy golden in Chromium', { timeout: 300_000 }, async () => {
    const app = join(work, 'vite-app');
    prepareExample('vite-app', app, tarball, ['vite']);
    execFileSync(join(app, 'node_modules/.bin/vite'), ['build', '--logLevel', 'warn'], { cwd: app, stdio: 'pipe' });
    const server = await preview({ root: app, configFile: false, logLevel: 'warn', plugins: [serveModels()], preview: { host: '127.0.0.1', port: 0 } });
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu'] });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${server.resolvedUrls!.local[0]}?prompt=${encodeURIComponent('Once upon a time')}`);
      await page.waitForFunction(() => /^(done|failed)/.test(document.querySelector('#status')?.textContent ?? ''), undefined, { timeout: 200_000 });
      expect(await page.textContent('#status')).toBe('done');
      // The page shows the prompt and 40 greedy tokens: the golden from its start.
      expect(await page.textContent('#output')).toBe(goldenAfter('Once upon a time', 40));
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      await new Promise<void>((done) => server.httpServer.close(() => done()));
    }
  });

  it('the Node chat example answers from the terminal; the types check under bundler and node16', { timeout: 300_000 }, () => {
    const dir = join(work, 'node-chat');
    prepareExample('node-chat', dir, tarball, ['typescript', '@types/node']);
    const chat = spawnSync(process.execPath, ['chat.js', modelPath('stories260K')], {
      cwd: dir,
      input: 'Once upon a time\n',
      encoding: 'utf8',
      timeout: 200_000,
      env: { ...process.env, VK_ICD_FILENAMES: '/usr/share/vulkan/icd.d/lvp_icd.json' },
    });
    expect(chat.status, chat.stderr).toBe(0);
    expect(chat.stdout.trim().length).toBeGreaterThan(0);

    // Every entry's types, as a user's TypeScript resolves them.
    writeFileSync(
      join(dir, 'check.ts'),
      `import { createEngine, createOpenAIFetch, type Engine } from '${packageJson.name}';
import { createEngine as createNodeEngine, serve } from '${packageJson.name}/node';
import { createWorkerEngine } from '${packageJson.name}/worker';
import { defineLlmChat } from '${packageJson.name}/embed';
export const checks: [typeof createEngine, typeof createNodeEngine, typeof serve, typeof createWorkerEngine, typeof defineLlmChat] = [createEngine, createNodeEngine, serve, createWorkerEngine, defineLlmChat];
export async function run(engine: Engine): Promise<string> {
  const fetch = createOpenAIFetch(engine);
  const node: Engine = await createNodeEngine('model');
  const reply = await node.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }] });
  // Fails (an unused directive) if the types resolved to any.
  // @ts-expect-error content is a string
  const wrong: number = reply.choices[0].message.content;
  return (await fetch('http://local/v1/models')).statusText + reply.choices[0].message.content + wrong;
}
`,
    );
    // Library checking on under bundler; under node16 @huggingface/tokenizers' own declarations fail it (their
    // imports lack extensions), so it is off there and the @ts-expect-error above shows ours still resolve.
    for (const resolution of ['bundler', 'node16']) {
      const module = resolution === 'bundler' ? 'esnext' : 'node16';
      const skipLibCheck = resolution === 'bundler' ? 'false' : 'true';
      const tsc = spawnSync(
        process.execPath,
        [join(dir, 'node_modules/typescript/bin/tsc'), '--noEmit', '--strict', '--skipLibCheck', skipLibCheck, '--module', module, '--moduleResolution', resolution, '--target', 'es2022', '--lib', 'es2022,dom,dom.iterable', '--types', 'node', 'check.ts'],
        { cwd: dir, encoding: 'utf8' },
      );
      expect(tsc.status, `${resolution}: ${tsc.stdout}${tsc.stderr}`).toBe(0);
    }
  });
});
