/** The `webgpu-llm` command: usage and exit codes for bad command lines, greedy generate, and the chat loop. */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, main } from '../../src/cli/main';
import { greedyGolden, modelPath } from '../models';

/** Runs main() in this process, collecting what it writes. */
async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
  vi.spyOn(console, 'log').mockImplementation((...parts) => void (stdout += `${parts.join(' ')}\n`));
  vi.spyOn(console, 'error').mockImplementation((...parts) => void (stderr += `${parts.join(' ')}\n`));
  const code = await main(argv);
  vi.restoreAllMocks();
  return { code, stdout, stderr };
}

afterEach(() => void vi.restoreAllMocks());

describe('webgpu-llm', () => {
  it('prints usage and exits 2 on a bad command line, with no stack trace', async () => {
    for (const argv of [[], ['frobnicate'], ['generate', '--temperature', '0'], ['generate', '--model', 'x', '--bogus'], ['generate', '--model', 'x', '--top-k', 'many'], ['serve', '--model', 'x', '--port', '70000']]) {
      const { code, stderr } = await run(argv);
      expect(code, argv.join(' ')).toBe(EXIT_USAGE);
      expect(stderr).toMatch(/usage: webgpu-llm/);
      expect(stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('prints each command’s usage on --help and exits 0', async () => {
    for (const command of ['generate', 'serve']) {
      const { code, stdout } = await run([command, '--help']);
      expect(code).toBe(EXIT_OK);
      expect(stdout).toContain(`usage: webgpu-llm ${command}`);
    }
    const { stdout } = await run(['--help']);
    expect(stdout).toContain('Exit codes');
  });

  it('exits 1 with the error table’s words when the model cannot load', async () => {
    const { code, stderr } = await run(['generate', '--model', resolve(modelPath('stories260K'), 'missing')]);
    expect(code).toBe(EXIT_FAILED);
    expect(stderr).toContain('config.json');
  });

  it('generate --temperature 0 from BOS prints the greedy golden; a sampling option out of range is usage', async () => {
    const golden = greedyGolden();
    const model = modelPath('stories260K');
    const { code, stdout, stderr } = await run(['generate', '--model', model, '--context', '64', '--temperature', '0', '--max-tokens', '24']);
    expect(code, stderr).toBe(EXIT_OK);
    const { createEngine } = await import('../../src/node/index');
    const engine = await createEngine(model, { contextLength: 64 });
    expect(stdout).toBe(`${engine.tokenizer.decode(golden.greedy_ids.slice(0, 24), { skipSpecialTokens: true })}\n`);
    await engine.dispose();

    const bad = await run(['generate', '--model', model, '--context', '64', '--top-p', '7']);
    expect(bad.code).toBe(EXIT_USAGE);
    expect(bad.stderr).toContain('top_p');
  });

  it('generate --chat answers each line from stdin and ends at EOF', () => {
    const cli = resolve(import.meta.dirname, '../../src/cli/webgpu-llm.mjs');
    const args = [cli, 'generate', '--chat', '--model', modelPath('stories260K'), '--context', '128', '--temperature', '0', '--max-tokens', '8'];
    const result = spawnSync(process.execPath, args, { input: 'Hello\nTell me more\n', encoding: 'utf8', timeout: 110_000 });
    expect(result.status, result.stderr).toBe(EXIT_OK);
    // Two replies, one line each.
    expect(result.stdout.trim().split('\n')).toHaveLength(2);
  });
});
