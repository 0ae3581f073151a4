/** A model folder's text files are capped like HTTP ones: an oversized config.json is refused before it is read. */
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelFileTooLargeError } from '../../src/model/files';
import { folderFiles } from '../../src/model/files-node';
import { MAX_TEXT_BYTES } from '../../src/net';

describe('folder text files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'webgpu-llm-files-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a config.json over the text cap is a ModelFileTooLargeError naming file and cap; smaller ones and missing ones read as before', async () => {
    // Sparse: one byte over the cap costs no disk and, were it read, 64 MiB of memory.
    writeFileSync(join(dir, 'config.json'), '');
    truncateSync(join(dir, 'config.json'), MAX_TEXT_BYTES + 1);
    writeFileSync(join(dir, 'tokenizer_config.json'), '{"a": 1}');
    const files = folderFiles(dir);
    const error = await files.text('config.json').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelFileTooLargeError);
    expect(error).toMatchObject({ file: 'config.json', size: MAX_TEXT_BYTES + 1, maxBytes: MAX_TEXT_BYTES });
    expect((error as Error).message).toMatch(/config\.json is 64\.0 MiB, over the 64 MiB cap/);
    expect(await files.text('tokenizer_config.json')).toBe('{"a": 1}');
    expect(await files.text('chat_template.jinja')).toBeUndefined();
  });
});
