/**
 * The error table (src/errors.ts) against the code: every error class under src/ has a row keyed by its
 * name, every row's class is a public export, and every row survives the trip through the worker protocol
 * as an instance of its own class.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeError, ERRORS, errorRow } from '../src/errors';
import { DeviceLostError } from '../src/gpu/errors';
import * as api from '../src/index';
import { NoCandidateTokenError } from '../src/sampling/sampler';
import { reviveError, serializeError } from '../src/worker/errors';

const SRC = join(import.meta.dirname, '../src');
/** Code the library never runs: benchmarks (with the GGUF writer), test support under dev/, the CLI. */
const NOT_LIBRARY = /^(bench|dev|cli)\//;

function libraryErrorClasses(): string[] {
  const names: string[] = [];
  for (const entry of readdirSync(SRC, { recursive: true, withFileTypes: true })) {
    const path = relative(SRC, join(entry.parentPath, entry.name));
    if (!entry.isFile() || !path.endsWith('.ts') || NOT_LIBRARY.test(path)) continue;
    for (const match of readFileSync(join(SRC, path), 'utf8').matchAll(/^export class (\w+) extends \w*Error\b/gm)) names.push(match[1]);
  }
  return names.sort();
}

describe('the error table', () => {
  it('has a row for every error class the library defines, keyed by the class name', () => {
    const classes = libraryErrorClasses();
    expect(classes.length).toBeGreaterThan(20);
    expect(Object.keys(ERRORS).sort()).toEqual(classes);
    for (const [name, row] of Object.entries(ERRORS)) expect(row.type.name).toBe(name);
  });

  it('is exported in full from the public entry point', () => {
    const exported: Record<string, unknown> = { ...api };
    for (const [name, row] of Object.entries(ERRORS)) expect(exported[name], name).toBe(row.type);
  });

  it('rebuilds every row across the worker boundary as an instance of its class, fields and message kept', () => {
    for (const [name, row] of Object.entries(ERRORS)) {
      // An instance without running the constructor: the table's classes all take different arguments.
      const error: Error = Object.create(row.type.prototype);
      Object.defineProperty(error, 'name', { value: name, enumerable: true });
      Object.assign(error, { message: `${name} happened`, detail: 7 });
      const revived = reviveError(structuredClone(serializeError(error)));
      expect(revived, name).toBeInstanceOf(row.type);
      expect(revived.name).toBe(name);
      expect(revived.message).toBe(`${name} happened`);
      expect(revived).toHaveProperty('detail', 7);
      expect(describeError(revived).kind).toBe(row.kind);
    }
  });

  it('describes errors from their row, and anything else as a generic failure', () => {
    const lost = reviveError(serializeError(new DeviceLostError('unknown', 'driver reset')));
    expect(describeError(lost)).toMatchObject({ kind: 'device-lost', title: 'The GPU device was lost', detail: lost.message });
    expect(describeError(lost).hint).toMatch(/Reload the model/);
    expect(describeError(new NoCandidateTokenError())).toMatchObject({ kind: 'other', title: 'NoCandidateTokenError', hint: '' });
    expect(describeError(new Error('boom'))).toEqual({ kind: 'other', title: 'Something went wrong', detail: 'boom', hint: '' });
    expect(describeError('plain text')).toMatchObject({ kind: 'other', detail: 'plain text' });
    // A name alone does not make an error one of ours.
    const impostor = Object.assign(new Error('x'), { name: 'DeviceLostError' });
    expect(describeError(impostor).kind).toBe('other');
    expect(errorRow('toString')).toBeUndefined();
  });
});
