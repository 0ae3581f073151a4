/**
 * Build half of the service worker (public/sw.js): once the app is written, lists the files of the output
 * folder and writes that list, with a hash of the files' contents as the cache version, into sw.js. Node
 * only (vite.config.ts).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import type { Plugin } from 'vite';

const PLACEHOLDER = "/* webgpu-llm:precache */ { version: 'dev', files: [] }";

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

/** @param exclude output paths (relative, with `/`) that the app shell does not need offline */
export function precacheServiceWorker(options: { exclude: RegExp }): Plugin {
  let outDir = '';
  return {
    name: 'webgpu-llm:precache',
    apply: 'build',
    configResolved(config) {
      outDir = resolve(config.root, config.build.outDir);
    },
    closeBundle: {
      // After every other plugin has written its files into the output folder.
      order: 'post',
      handler() {
        const swPath = join(outDir, 'sw.js');
        const source = readFileSync(swPath, 'utf8');
        if (!source.includes(PLACEHOLDER)) throw new Error(`${swPath} lacks the precache placeholder ${PLACEHOLDER}`);
        const files = filesUnder(outDir)
          .map((f) => relative(outDir, f).split(sep).join('/'))
          .filter((f) => f !== 'sw.js' && !options.exclude.test(f))
          .sort();
        const hash = createHash('sha256');
        for (const f of files) hash.update(f).update('\0').update(readFileSync(join(outDir, f)));
        const manifest = { version: hash.digest('hex').slice(0, 16), files };
        writeFileSync(swPath, source.replace(PLACEHOLDER, JSON.stringify(manifest)));
      },
    },
  };
}
