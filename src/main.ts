/** The chat page. The service worker (production builds only) keeps the app shell available offline. */
import './ui/messages.css';
import './ui/chat/chat.css';
import { mountChat } from './ui/chat/app';
import { registerServiceWorker } from './ui/pwa';

registerServiceWorker();
void mountChat(document.getElementById('app') ?? document.body);
