import { expect, it } from 'vitest';
import { unlessAborted } from '../../src/util/abort';

it('gives the promise its outcome while the signal stays quiet, and removes its listener', async () => {
  const controller = new AbortController();
  const added: string[] = [];
  const removed: string[] = [];
  const signal = controller.signal;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((type: string, ...rest: [EventListener, AddEventListenerOptions?]) => (added.push(type), add(type, ...rest))) as typeof signal.addEventListener;
  signal.removeEventListener = ((type: string, ...rest: [EventListener]) => (removed.push(type), remove(type, ...rest))) as typeof signal.removeEventListener;
  await expect(unlessAborted(Promise.resolve(7), signal)).resolves.toBe(7);
  await expect(unlessAborted(Promise.reject(new RangeError('no')), signal)).rejects.toThrow(RangeError);
  expect(added).toEqual(['abort', 'abort']);
  expect(removed).toEqual(['abort', 'abort']);
  await expect(unlessAborted(Promise.resolve('plain'), undefined)).resolves.toBe('plain');
});

it('rejects with the reason as soon as the signal aborts, or at once when it already has', async () => {
  const controller = new AbortController();
  const never = new Promise<number>(() => {});
  const waiting = unlessAborted(never, controller.signal);
  const reason = new Error('stopped');
  controller.abort(reason);
  await expect(waiting).rejects.toBe(reason);
  await expect(unlessAborted(Promise.resolve(1), controller.signal)).rejects.toBe(reason);
});
