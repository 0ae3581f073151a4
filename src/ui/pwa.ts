/**
 * Registers the app shell's service worker (public/sw.js, its precache list filled in at build time). Not in
 * the dev server, whose modules change on every edit and must never come from a cache.
 */
export function registerServiceWorker(): void {
  if (!import.meta.env.PROD || !('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register(new URL('sw.js', document.baseURI)).catch((e: unknown) => {
    // The app works without it, only not offline; say why in the console for whoever wonders.
    console.warn('The service worker could not be registered; the app will not work offline.', e);
  });
}
