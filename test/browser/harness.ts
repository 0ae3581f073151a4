/**
 * Headless Chromium (Debian's, WebGPU on SwiftShader) against the Vite dev server that `npm start` uses,
 * one of each per test file.
 */
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';

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

export async function startBrowser(): Promise<BrowserHarness> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`bash .ci/install\` to install Chromium`);
  const server: ViteDevServer = await createServer({
    root: ROOT,
    logLevel: 'warn',
    // Port 0: any free port, so this can run beside `npm start`.
    server: { host: '127.0.0.1', port: 0, strictPort: true, hmr: false, watch: null },
  });
  await server.listen();
  // Playwright makes a fresh temporary profile (--user-data-dir) for each launch.
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const { port } = server.httpServer!.address() as AddressInfo;
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
      await server.close();
    },
  };
}
