/** What the script-tag build exposes: the public engine API, the model cache, workers and the element. */
export * from '../index';
export { deleteCachedModel, listCachedModels, openCachedModel } from '../storage';
export { createInThreadEngine, type ChatEngine } from '../worker/chat-engine';
export { createWorkerEngine } from '../worker/client';
export { renderMarkdown } from '../ui/markdown';
export { createChatEngine, type EngineMode } from './engine';
export { defineLlmChat, type LlmChatElement } from './llm-chat';
