// @ts-check
/// <reference lib="webworker" />
/**
 * The app shell's service worker: it stores the built page, scripts, styles, icons and models.json when it
 * installs, and answers those requests from that store, so the chat opens with no network. Model weights
 * are not its business: the app keeps them in IndexedDB. Requests it has no copy of go to the network.
 *
 * The build fills in MANIFEST (see src/worker/precache-plugin.ts): the file list and a hash of their
 * contents, so every build with a change gets a new cache and the browser installs the new worker.
 */
const MANIFEST = /* webgpu-llm:precache */ { version: 'dev', files: [] };

const PREFIX = 'webgpu-llm-shell-';
const CACHE = `${PREFIX}${MANIFEST.version}`;
const sw = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));
/** Absolute URLs of the precached files; the scope itself stands for its index.html. */
const PRECACHED = new Set(MANIFEST.files.map((file) => new URL(file, sw.registration.scope).href));
const INDEX = new URL('index.html', sw.registration.scope).href;

sw.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // 'reload' skips the HTTP cache, so the store never holds a stale copy of a file that kept its name.
      await cache.addAll([...PRECACHED].map((url) => new Request(url, { cache: 'reload' })));
      await sw.skipWaiting();
    })(),
  );
});

sw.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key.startsWith(PREFIX) && key !== CACHE) await caches.delete(key);
      await sw.clients.claim();
    })(),
  );
});

sw.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  url.hash = '';
  // Navigations may carry a query (?model=…); the shell is the same page whatever it says.
  if (request.mode === 'navigate') url.search = '';
  let key = url.href;
  if (key === sw.registration.scope) key = INDEX;
  if (!PRECACHED.has(key)) return;
  event.respondWith(
    (async () => {
      const cached = await caches.match(key, { cacheName: CACHE });
      return cached ?? fetch(request);
    })(),
  );
});
