/**
 * The app's one page: the chat, or with `?selftest` the kernel self-test (each WGSL kernel against its CPU
 * reference on this device). The service worker (production builds only) keeps the shell available offline.
 */
import { registerServiceWorker } from './ui/pwa';

const root = document.getElementById('app') ?? document.body;
registerServiceWorker();
if (new URLSearchParams(location.search).has('selftest')) {
  document.title = 'webgpu-llm kernel self-test';
  await import('./ui/selftest.css');
  const { mountSelftest, selftestIntro } = await import('./ui/selftest');
  document.body.prepend(...selftestIntro());
  await mountSelftest(root);
} else {
  try {
    await import('./ui/messages.css');
    await import('./ui/chat/chat.css');
    const { mountChat } = await import('./ui/chat/app');
    await mountChat(root);
  } catch (error) {
    // A failure before the chat can show its own errors (a chunk that did not download, storage refused)
    // would otherwise leave a blank page.
    const message = document.createElement('p');
    message.setAttribute('role', 'alert');
    message.textContent = `The chat could not start: ${error instanceof Error ? error.message : String(error)}. Reload the page to try again.`;
    root.replaceChildren(message);
    throw error;
  }
}
