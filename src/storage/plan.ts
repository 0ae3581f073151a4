/**
 * Planning a download: every file's size (HEAD, in parallel), so progress has a stable total and the quota
 * is checked before the first byte. For a sharded model the index is downloaded here, since it names the shards.
 */
import { parseSafetensorsIndex } from '../formats/safetensors';
import { HttpError } from '../net';
import { MAX_TEXT_BYTES, textTooLarge } from '../net/http';
import { deleteFileData, readProgress, type CachedFile } from './cache';
import { request, storedBytes, throwIfAborted, type Context } from './context';
import { downloadFile, type PlanEntry } from './stream';
import { readWhole } from './verified';

/** The files besides the weights, in download order, and whether a model must have them. All are text. */
const TEXT_FILES: ReadonlyArray<readonly [string, boolean]> = [
  ['config.json', true],
  ['generation_config.json', false],
  ['tokenizer.json', true],
  ['tokenizer_config.json', false],
  ['chat_template.jinja', false],
];
const SINGLE_WEIGHTS = 'model.safetensors';
const WEIGHTS_INDEX = 'model.safetensors.index.json';

export async function plan(ctx: Context): Promise<{ entries: PlanEntry[]; absent: string[] }> {
  const probes = await Promise.all([
    ...[...TEXT_FILES, ...ctx.optionalTextFiles.map((file) => [file, false] as const)].map(async ([file, required]) => ({
      file,
      entry: await probe(ctx, file, required, MAX_TEXT_BYTES),
    })),
    probe(ctx, SINGLE_WEIGHTS, false, undefined).then((entry) => ({ file: SINGLE_WEIGHTS, entry })),
  ]);
  const entries: PlanEntry[] = [];
  const absent: string[] = [];
  for (const { file, entry } of probes) {
    if (entry) entries.push(entry);
    else absent.push(file);
  }
  if (entries.some((e) => e.file === SINGLE_WEIGHTS)) return { entries, absent };

  const indexEntry = await probe(ctx, WEIGHTS_INDEX, false, MAX_TEXT_BYTES);
  if (!indexEntry) {
    throw new HttpError('status', 404, ctx.resolve(SINGLE_WEIGHTS), `the model has neither ${SINGLE_WEIGHTS} nor ${WEIGHTS_INDEX} (both answered 404).`, {
      file: SINGLE_WEIGHTS,
    });
  }
  const index = await downloadFile(ctx, indexEntry, undefined);
  const indexFile: CachedFile = { name: WEIGHTS_INDEX, size: storedBytes(index), chunks: index.chunks };
  const text = new TextDecoder().decode(await readWhole(ctx, indexFile));
  const shards = [...new Set(parseSafetensorsIndex(text).weightMap.values())];
  entries.push({ ...indexEntry, size: indexFile.size, progress: index });
  for (const shard of await Promise.all(shards.map((s) => probe(ctx, s, true, undefined)))) {
    // probe() only answers undefined (404) for optional files.
    if (shard) entries.push(shard);
  }
  return { entries, absent };
}

/** What an earlier attempt stored for the file, else the server's answer to HEAD; undefined for an absent optional file. */
async function probe(ctx: Context, file: string, required: boolean, maxBytes: number | undefined): Promise<PlanEntry | undefined> {
  const progress = await readProgress(ctx.modelId, file);
  if (progress && progress.url === ctx.url && (progress.complete || progress.chunkBytes === ctx.chunkBytes)) {
    return { file, size: progress.complete ? storedBytes(progress) : (progress.size ?? undefined), progress, maxBytes };
  }
  // Chunks from another URL or of another chunk size cannot be continued.
  if (progress) await deleteFileData(ctx.modelId, file);
  throwIfAborted(ctx);
  const res = await request(ctx, file, { method: 'HEAD' });
  await res.discard();
  // A static host may answer any unknown path with its HTML app page: for an optional file that means absent.
  if (!required && (res.status === 404 || (res.ok && res.isHtml()))) return undefined;
  await res.check();
  const size = res.contentLength();
  if (maxBytes !== undefined && size !== undefined && size > maxBytes) {
    throw textTooLarge(res, `${size.toLocaleString('en-US')} bytes`, maxBytes);
  }
  return { file, size, progress: undefined, maxBytes };
}
