/**
 * Headless Chromium (Debian's, WebGPU on SwiftShader) against a Vite server, one of each per test file:
 * the dev server (startBrowser), or the production build behind `vite preview` as `npm start` serves it
 * (startPreviewBrowser).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createServer, preview, type Plugin, type ViteDevServer } from 'vite';

export const ROOT = resolve(import.meta.dirname, '../..');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export interface BrowserHarness {
  browser: Browser;
  url(path: string): string;
  /** A new page that records console errors and uncaught exceptions. */
  newPage(): Promise<{ page: Page; consoleErrors: string[] }>;
  close(): Promise<void>;
}

export interface BrowserOptions {
  /** false: Chromium without WebGPU (no --enable-unsafe-webgpu, and the feature switched off), as many browsers are. */
  webgpu?: boolean;
}

/** The Vite dev server (plus `plugins`, e.g. extra headers) and a Chromium pointed at it. */
export async function startBrowser(plugins: Plugin[] = [], options: BrowserOptions = {}): Promise<BrowserHarness> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`bash .ci/install\` to install Chromium`);
  const server: ViteDevServer = await createServer({
    root: ROOT,
    logLevel: 'warn',
    plugins,
    // Port 0: any free port, so this can run beside `npm start`.
    server: { host: '127.0.0.1', port: 0, strictPort: true, hmr: false, watch: null },
  });
  await server.listen();
  const { port } = server.httpServer!.address() as AddressInfo;
  return launch(port, () => server.close(), options);
}

/** A policy as strict as a careful host's: nothing inline, no eval, scripts and workers from this origin only. */
export const STRICT_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'";
/** STRICT_CSP plus the one directive WebAssembly needs (structured output, tool calls, the CPU backend). */
export const WASM_CSP = STRICT_CSP.replace("script-src 'self'", "script-src 'self' 'wasm-unsafe-eval'");
/** What the CPU backend adds to STRICT_CSP: WebAssembly compilation, and wllama's workers from blob: URLs. */
export const CPU_CSP = STRICT_CSP.replace("script-src 'self'", "script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:");

function viteCli(args: string[]): void {
  // A child process, as `npm run build` runs it: inside vitest NODE_ENV is 'test', which would make a dev build.
  const env = { ...process.env };
  delete env.NODE_ENV;
  execFileSync(process.execPath, [join(ROOT, 'node_modules/vite/bin/vite.js'), ...args], { cwd: ROOT, env, stdio: 'pipe' });
}

/**
 * Builds the app (and the script-tag library into the same folder) into a temporary directory and serves
 * it with `vite preview`, every response carrying `csp` (STRICT_CSP unless given), so the tests see what
 * `npm start` serves under a policy that forbids inline scripts, eval and foreign workers.
 */
export async function startPreviewBrowser(csp = STRICT_CSP, options: BrowserOptions = {}): Promise<BrowserHarness> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`bash .ci/install\` to install Chromium`);
  const outDir = mkdtempSync(join(tmpdir(), 'webgpu-llm-preview-'));
  viteCli(['build', '--logLevel', 'error', '--emptyOutDir', '--outDir', outDir]);
  viteCli(['build', '--mode', 'lib', '--logLevel', 'error', '--outDir', outDir]);
  const policy: Plugin = {
    name: 'test:strict-csp',
    configurePreviewServer(server) {
      server.middlewares.use((_req, res, next) => {
        res.setHeader('Content-Security-Policy', csp);
        next();
      });
    },
  };
  const server = await preview({
    root: ROOT,
    logLevel: 'warn',
    plugins: [policy],
    build: { outDir },
    preview: { host: '127.0.0.1', port: 0, strictPort: true },
  });
  const { port } = server.httpServer.address() as AddressInfo;
  return launch(port, async () => {
    await server.close();
    rmSync(outDir, { recursive: true, force: true });
  }, options);
}

async function launch(port: number, closeServer: () => Promise<void>, options: BrowserOptions = {}): Promise<BrowserHarness> {
  const args = options.webgpu === false ? [...CHROMIUM_ARGS.filter((a) => a !== '--enable-unsafe-webgpu'), '--disable-features=WebGPU'] : CHROMIUM_ARGS;
  // Playwright makes a fresh temporary profile (--user-data-dir) for each launch.
  const browser = await chromium.launch({ executablePath: CHROMIUM, args });
  return {
    browser,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    async newPage() {
      const page = await browser.newPage();
      const consoleErrors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') consoleErrors.push(m.text());
      });
      page.on('pageerror', (e) => consoleErrors.push(e.message));
      return { page, consoleErrors };
    },
    async close() {
      await browser.close();
      await closeServer();
    },
  };
}
