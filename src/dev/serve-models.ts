/**
 * A Vite plugin that serves a local models folder at /models/ (dev server and preview), with HTTP Range
 * support so weights stream exactly as they do from Hugging Face. GET /models/ lists the folders that hold
 * a config.json. The folder comes from one setting: WEBGPU_LLM_MODELS (default ../shared/models).
 */
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import type { Connect, Plugin } from 'vite';

const TYPES: Record<string, string> = { '.json': 'application/json', '.safetensors': 'application/octet-stream' };

export function modelsDir(): string {
  return resolve(process.env.WEBGPU_LLM_MODELS ?? '../shared/models');
}

function listModels(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(dir, e.name, 'config.json')))
    .map((e) => e.name)
    .sort();
}

function handler(dir: string): Connect.NextHandleFunction {
  return (req: Connect.IncomingMessage, res: ServerResponse, next: Connect.NextFunction) => {
    // Connect also routes /models.json here (as "/.json"): only /models and /models/… are ours.
    if ((req.method !== 'GET' && req.method !== 'HEAD') || /^\/models[^/?]/.test(req.originalUrl ?? '')) return next();
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]);
    if (path === '/' || path === '') {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify(listModels(dir)));
      return;
    }
    const file = resolve(dir, `.${path}`);
    if (!file.startsWith(dir + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.statusCode = 404;
      res.end('not found');
      return;
    }
    const size = statSync(file).size;
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('Content-Type', TYPES[extname(file)] ?? 'application/octet-stream');
    res.setHeader('Cache-Control', 'no-cache');
    let start = 0;
    let end = size - 1;
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    if (req.headers.range) {
      if (!range || (range[1] === '' && range[2] === '')) return void ((res.statusCode = 416), res.end());
      if (range[1] === '') start = Math.max(0, size - Number(range[2]));
      else {
        start = Number(range[1]);
        if (range[2] !== '') end = Math.min(Number(range[2]), size - 1);
      }
      if (start > end || start >= size) {
        res.statusCode = 416;
        res.setHeader('Content-Range', `bytes */${size}`);
        return void res.end();
      }
      res.statusCode = 206;
      res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
    }
    res.setHeader('Content-Length', String(end - start + 1));
    if (req.method === 'HEAD' || size === 0) return void res.end();
    createReadStream(file, { start, end }).pipe(res);
  };
}

export function serveModels(): Plugin {
  const dir = modelsDir();
  return {
    name: 'webgpu-llm:serve-models',
    configureServer: (server) => void server.middlewares.use('/models', handler(dir)),
    configurePreviewServer: (server) => void server.middlewares.use('/models', handler(dir)),
  };
}
