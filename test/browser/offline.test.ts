/**
 * The chat page as an offline app: after one online visit (the service worker stores the app shell, the
 * model goes into IndexedDB), the browser goes offline, the page reloads and chats without a single
 * request reaching the network.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startPreviewBrowser, type BrowserHarness } from '../../src/dev/browser';

let harness: BrowserHarness;
beforeAll(async () => {
  harness = await startPreviewBrowser();
});
afterAll(() => harness?.close());

it('reloads offline and chats with zero network requests', { timeout: 240_000 }, async () => {
  const { page, consoleErrors } = await harness.newPage();
  await page.goto(harness.url('/'));
  await page.waitForFunction(() => window.__chat?.status === 'ready', undefined, { timeout: 120_000 });
  // The worker has installed (precached the shell) and controls the page once `controller` is set.
  await page.evaluate(() => navigator.serviceWorker.ready);
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null);

  const context = page.context();
  const network: string[] = [];
  // Anything that would leave the browser (from the page, its worker or the service worker) lands here.
  await context.route('**/*', (route) => {
    network.push(route.request().url());
    return route.abort('internetdisconnected');
  });
  await context.setOffline(true);
  const seen: { url: string; fromServiceWorker: boolean | undefined }[] = [];
  page.on('requestfinished', async (request) => {
    seen.push({ url: request.url(), fromServiceWorker: (await request.response())?.fromServiceWorker() });
  });
  page.on('requestfailed', (request) => network.push(`failed: ${request.url()}`));
  consoleErrors.length = 0;

  await page.reload();
  await page.waitForFunction(() => window.__chat?.status === 'ready', undefined, { timeout: 120_000 });
  expect(await page.evaluate(() => navigator.onLine)).toBe(false);
  expect(await page.evaluate(() => window.__chat?.modelId)).toBe('local/stories260K');

  await page.fill('input[name=temperature]', '0');
  await page.fill('input[name=maxTokens]', '12');
  await page.fill('.composer textarea', 'Once upon a time');
  await page.press('.composer textarea', 'Enter');
  await page.waitForFunction(() => window.__chat?.status === 'ready' && window.__chat.messages.length === 2, undefined, { timeout: 120_000 });
  const reply = await page.evaluate(() => window.__chat!.messages[1].content);
  expect(typeof reply === 'string' && reply.length > 0).toBe(true);

  expect(network).toEqual([]);
  expect(seen.length).toBeGreaterThan(0);
  expect(seen.filter((r) => !r.fromServiceWorker)).toEqual([]);
  expect(consoleErrors).toEqual([]);
  await page.close();
});
