/**
 * The models the picker offers: public/models.json (Hugging Face repos), the folders of the local models
 * directory (`GET /models/`, served by the dev and preview servers), repo URLs the user pasted, and whatever
 * is in the model cache. The default is the first local model, else SmolLM2-135M-Instruct.
 */
import type { EngineOptions } from '../../engine/types';
import { listCachedModels, type CachedModelInfo } from '../../storage';
import { isJsonObject } from '../../util/json';

export type Dtype = NonNullable<EngineOptions['dtype']>;
/**
 * Dtypes the picker offers; 'auto' keeps the checkpoint's own (f32 for F32, f16 for F16/BF16); q8/q4 quantize
 * at load (what lets a 1B+ model fit a 4 GB GPU).
 */
export type DtypeChoice = Dtype | 'auto';
const DTYPE_CHOICES: readonly DtypeChoice[] = ['auto', 'f16', 'f32', 'q8', 'q4'];

export interface ModelEntry {
  id: string;
  name: string;
  /** A Hugging Face repo URL, or a folder URL (absolute, or relative to the page). */
  source: string;
  dtypes: DtypeChoice[];
  /** Download size, to warn before a big download. */
  approxBytes?: number;
  /** The checkpoint's own dtype when it differs from what the GPU holds (bf16: twice the bytes of q8). */
  checkpointDtype?: string;
  /** The repo asks users to accept its license on huggingface.co before it can be downloaded. */
  gated?: boolean;
  /** Tokens of context to allocate; default the model's maximum. */
  contextLength?: number;
  origin: 'catalog' | 'local' | 'custom' | 'cache';
}

export interface Catalog {
  entries: ModelEntry[];
  cached: Map<string, CachedModelInfo>;
  defaultId: string | undefined;
}

const FALLBACK_DEFAULT_ID = 'SmolLM2-135M-Instruct';
const CUSTOM_KEY = 'webgpu-llm:custom-models';
const HF_REPO = /^https:\/\/huggingface\.co\/([\w.-]+)\/([\w.-]+)\/?(?:\/tree\/[\w.-]+\/?)?$/;

function isDtypeChoice(value: unknown): value is DtypeChoice {
  return DTYPE_CHOICES.some((d) => d === value);
}

/** One models.json entry, checked field by field: the file is data, and a bad entry is skipped, not fatal. */
function parseEntry(value: unknown): ModelEntry | undefined {
  if (!isJsonObject(value)) return undefined;
  const { id, name, source, dtypes, approxBytes, contextLength, checkpointDtype, gated } = value;
  if (typeof id !== 'string' || typeof name !== 'string' || typeof source !== 'string') return undefined;
  const choices = Array.isArray(dtypes) ? dtypes.filter(isDtypeChoice) : [];
  return {
    id,
    name,
    source,
    dtypes: choices.length ? choices : ['auto'],
    approxBytes: typeof approxBytes === 'number' ? approxBytes : undefined,
    contextLength: typeof contextLength === 'number' ? contextLength : undefined,
    checkpointDtype: typeof checkpointDtype === 'string' ? checkpointDtype : undefined,
    gated: gated === true,
    origin: 'catalog',
  };
}

async function fetchJson(url: string): Promise<unknown> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

/** A pasted Hugging Face repo URL as a picker entry, or undefined when it is not one. */
export function customEntry(url: string): ModelEntry | undefined {
  const m = HF_REPO.exec(url.trim());
  if (!m) return undefined;
  return { id: `${m[1]}/${m[2]}`, name: `${m[1]}/${m[2]}`, source: url.trim().replace(/\/$/, ''), dtypes: ['f16', 'f32', 'auto'], origin: 'custom' };
}

function readCustom(): ModelEntry[] {
  try {
    const stored: unknown = JSON.parse(localStorage.getItem(CUSTOM_KEY) ?? '[]');
    return Array.isArray(stored) ? stored.flatMap((url) => (typeof url === 'string' ? (customEntry(url) ?? []) : [])) : [];
  } catch {
    return [];
  }
}

export function saveCustom(entry: ModelEntry): void {
  const urls = readCustom().map((e) => e.source);
  if (!urls.includes(entry.source)) localStorage.setItem(CUSTOM_KEY, JSON.stringify([...urls, entry.source]));
}

export async function loadCatalog(): Promise<Catalog> {
  const base = document.baseURI;
  const [listed, localNames, cachedList] = await Promise.all([
    fetchJson(new URL('models.json', base).href).then(
      (data) => (Array.isArray(data) ? data.flatMap((e) => parseEntry(e) ?? []) : []),
      () => [],
    ),
    // Offline there is no local server to ask (and a request would only fail); cached entries stand in.
    navigator.onLine
      ? fetchJson(new URL('models/', base).href).then(
          (data) => (Array.isArray(data) ? data.filter((n): n is string => typeof n === 'string') : []),
          () => [],
        )
      : Promise.resolve([]),
    listCachedModels().catch(() => []),
  ]);
  const local: ModelEntry[] = localNames.map((name) => ({
    id: `local/${name}`,
    name: `${name} (local)`,
    source: `models/${name}/`,
    dtypes: ['auto', 'f32', 'f16'],
    origin: 'local',
  }));
  const entries = [...local, ...listed, ...readCustom()];
  const cached = new Map(cachedList.map((m) => [m.modelId, m]));
  for (const model of cachedList) {
    if (entries.some((e) => e.id === model.modelId)) continue;
    const isLocal = model.modelId.startsWith('local/');
    entries.push({
      id: model.modelId,
      name: isLocal ? `${model.modelId.slice('local/'.length)} (local)` : model.modelId,
      source: model.url,
      dtypes: isLocal ? ['auto', 'f32', 'f16'] : ['f16', 'f32', 'auto'],
      origin: isLocal ? 'local' : 'cache',
    });
  }
  const firstLocal = entries.find((e) => e.origin === 'local');
  const defaultId = firstLocal?.id ?? (entries.some((e) => e.id === FALLBACK_DEFAULT_ID) ? FALLBACK_DEFAULT_ID : entries[0]?.id);
  return { entries, cached, defaultId };
}

export async function refreshCached(): Promise<Map<string, CachedModelInfo>> {
  const list = await listCachedModels().catch(() => []);
  return new Map(list.map((m) => [m.modelId, m]));
}
