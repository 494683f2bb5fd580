/** Bounds on calls that may hang (agent/deadline.ts): a deadline per caller, one outstanding call per key. */
import { describe, expect, it } from 'vitest';
import { SingleFlight, withDeadline } from '../../agent/deadline.js';

const never = () => new Promise<never>(() => undefined);

describe('withDeadline', () => {
  it('passes a value or error through, and turns a hang into an error naming the call', async () => {
    await expect(withDeadline(Promise.resolve(1), 50, 'x')).resolves.toBe(1);
    await expect(withDeadline(Promise.reject(new Error('boom')), 50, 'x')).rejects.toThrow('boom');
    await expect(withDeadline(never(), 20, 'dockerd (list)')).rejects.toThrow(
      'dockerd (list) did not answer within 20 ms',
    );
  });
});

describe('SingleFlight', () => {
  it('keeps one call per key outstanding while it hangs, and starts a new one after it settles', async () => {
    const f = new SingleFlight<number>();
    let calls = 0;
    let release: (v: number) => void = () => undefined;
    const hung = () => {
      calls++;
      return new Promise<number>((r) => {
        release = r;
      });
    };
    for (let i = 0; i < 5; i++)
      await expect(f.run('gvisor', hung, 10, 'list')).rejects.toThrow(/within 10 ms/);
    expect(calls).toBe(1);
    // Another key is independent.
    await expect(f.run('vm', async () => 7, 10, 'list')).resolves.toBe(7);
    release(3);
    await new Promise((r) => setTimeout(r, 0));
    await expect(f.run('gvisor', async () => 4, 10, 'list')).resolves.toBe(4);
    expect(calls).toBe(1);
  });

  it('does not leave an unhandled rejection when a call fails after every caller gave up', async () => {
    const f = new SingleFlight<number>();
    let fail: (e: Error) => void = () => undefined;
    const p = f.run('k', () => new Promise<number>((_, rej) => (fail = rej)), 5, 'list');
    await expect(p).rejects.toThrow(/within 5 ms/);
    fail(new Error('late'));
    await new Promise((r) => setTimeout(r, 10));
    await expect(f.run('k', async () => 1, 10, 'list')).resolves.toBe(1);
  });
});
