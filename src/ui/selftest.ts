/**
 * The self-test page: acquires the GPU, runs the kernel suite and shows one row per case. The state is
 * mirrored to `window.__selftest` so a headless browser can wait for it and read the results.
 * Everything shown is set through textContent: adapter strings and error messages are data, not markup.
 */
import { acquireGpu, type Gpu } from '../gpu/device';
import { runSuite, selectCases, type SuiteResult } from '../selftest/suite';

export interface SelftestState {
  done: boolean;
  adapter: { name: string; isFallbackAdapter: boolean; features: string[] } | null;
  results: SuiteResult[];
  /** Cases not run because the device lacks a feature they need. */
  skipped: string[];
  /** Why nothing ran (no WebGPU, no adapter, ...). */
  error?: string;
}

declare global {
  interface Window {
    __selftest?: SelftestState;
  }
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, className?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

const num = (v: number | undefined) => (v === undefined ? '–' : v.toExponential(2));

function resultRow(r: SuiteResult): HTMLTableRowElement {
  const row = el('tr', undefined, r.passed ? 'pass' : 'fail');
  row.append(
    el('td', r.name),
    el('td', num(r.check?.nmse), 'num'),
    el('td', r.check ? r.check.tolerance.toExponential(0) : '–', 'num'),
    el('td', num(r.check?.maxAbsError), 'num'),
    el('td', r.ms.toFixed(0), 'num'),
    el('td', String(r.seed), 'num'),
    el('td', r.passed ? 'pass' : 'FAIL', 'result'),
    el('td', r.message ?? '', 'message'),
  );
  return row;
}

function resultsTable(): { table: HTMLTableElement; body: HTMLTableSectionElement } {
  const table = el('table');
  const head = el('tr');
  for (const h of ['case', 'NMSE', 'tolerance', 'max abs error', 'ms', 'seed', 'result', '']) head.append(el('th', h));
  const thead = el('thead');
  thead.append(head);
  const body = el('tbody');
  table.append(thead, body);
  return { table, body };
}

function adapterInfo(gpu: Gpu): HTMLDListElement {
  const features = Object.entries({
    'shader-f16': gpu.features.shaderF16,
    subgroups: gpu.features.subgroups,
    'timestamp-query': gpu.features.timestampQuery,
  });
  const list = el('dl');
  list.append(
    el('dt', 'Adapter'),
    el('dd', `${gpu.adapterName || '(unnamed)'}${gpu.isFallbackAdapter ? ' (fallback adapter)' : ''}`),
    el('dt', 'Features'),
    el('dd', features.map(([name, on]) => `${name}: ${on ? 'yes' : 'no'}`).join(', ')),
  );
  return list;
}

/** The page heading and how to use its query parameters. */
export function selftestIntro(): HTMLElement[] {
  const hint = el('p', undefined, 'hint');
  hint.append(
    'Each WGSL kernel against its CPU reference on random inputs. Query parameters: ',
    el('code', '&only=<text>'),
    ' runs the cases whose name contains the text; ',
    el('code', '&seed=<n>'),
    ' replays a seed from the table. The chat is on ',
  );
  const link = el('a', 'the start page');
  link.href = './';
  hint.append(link, '.');
  return [el('h1', 'webgpu-llm kernel self-test'), hint];
}

export async function mountSelftest(root: HTMLElement, query = new URLSearchParams(location.search)): Promise<SelftestState> {
  const state: SelftestState = { done: false, adapter: null, results: [], skipped: [] };
  window.__selftest = state;
  const status = el('p');
  status.id = 'status';
  status.textContent = 'Acquiring the GPU…';
  root.replaceChildren(status);

  try {
    const gpu = await acquireGpu();
    state.adapter = {
      name: gpu.adapterName,
      isFallbackAdapter: gpu.isFallbackAdapter,
      features: [...gpu.device.features].sort(),
    };
    const seedParam = query.get('seed');
    const { run, skipped } = selectCases(gpu, query.get('only') ?? '');
    state.skipped = skipped.map((c) => c.name);
    const { table, body } = resultsTable();
    root.append(adapterInfo(gpu), table);

    status.textContent = `Running ${run.length} cases…`;
    const start = performance.now();
    await runSuite(gpu, run, {
      seed: seedParam === null ? undefined : Number(seedParam) >>> 0,
      onResult: (r) => {
        state.results.push(r);
        body.append(resultRow(r));
        status.textContent = `Running ${run.length} cases… ${state.results.length} done`;
      },
    });

    const failed = state.results.filter((r) => !r.passed).length;
    const seconds = ((performance.now() - start) / 1000).toFixed(1);
    const skippedNote = skipped.length ? `, ${skipped.length} skipped (the device lacks a feature they need)` : '';
    status.textContent = `${state.results.length - failed} passed, ${failed} failed${skippedNote} in ${seconds} s`;
    status.dataset.state = failed || !state.results.length ? 'fail' : 'pass';
  } catch (e) {
    state.error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    status.textContent = 'The self-test could not run.';
    status.dataset.state = 'fail';
    root.append(el('p', state.error, 'error'));
  }
  state.done = true;
  return state;
}
