/** eachLimited (coordinator/workloads/writes.ts): a pass's writes of one kind, a few at a time. */
import { describe, expect, it } from 'vitest';
import { eachLimited } from '../../../coordinator/workloads/writes.js';

const tick = () => new Promise((r) => setTimeout(r, 1));

describe('eachLimited', () => {
  it('runs every item, never more than the limit at once', async () => {
    let running = 0;
    let most = 0;
    const done: number[] = [];
    await eachLimited([...Array(30).keys()], 8, async (i) => {
      running++;
      most = Math.max(most, running);
      await tick();
      running--;
      done.push(i);
    });
    expect(done.sort((a, b) => a - b)).toEqual([...Array(30).keys()]);
    expect(most).toBe(8);
  });

  it('stops starting items after a failure and throws it once those running end', async () => {
    const started: number[] = [];
    let running = 0;
    const run = eachLimited([...Array(20).keys()], 4, async (i) => {
      started.push(i);
      running++;
      await tick();
      running--;
      if (i === 2) throw new Error('boom 2');
    });
    await expect(run).rejects.toThrow('boom 2');
    expect(running).toBe(0);
    expect(started.length).toBeLessThan(20);
  });

  it('does nothing for no items', async () => {
    await eachLimited([], 8, async () => {
      throw new Error('never');
    });
  });
});
