/**
 * The agent SIGKILLed at seeded random moments of one piece of work, again and again: each run begins the work
 * (writes an intent), waits a drawn delay within `windowMs`, kills the agent, records how far the work got,
 * starts the agent again and waits until `problems()` is empty (exactly one copy, nothing leaked), then ends
 * the run (withdraws the intent, waits until nothing is left). Used for containers (two-container create) and
 * VMs (image step, boot). Vitest-free.
 */
import { sleep, waitFor } from '../../../deploy/stack/proc.js';
import type { AgentWorld } from '../agent-world.js';
import type { Rng } from '../random.js';

/** One kind of work to interrupt. */
export interface KillLoopWork {
  /** Begins run `i`'s work (e.g. writes its intent). */
  begin(i: number): Promise<void>;
  /** How far run `i` got, read right after the kill (for the figures). */
  progress(i: number): Promise<string>;
  /** What is wrong with run `i` after the restart: empty once exactly one copy runs and nothing leaked. */
  problems(i: number): Promise<string[]>;
  /** Ends run `i` (withdraws it) and resolves once nothing of it is left. */
  end(i: number): Promise<void>;
}

/** What the loop measured. */
export interface KillLoopResult {
  /** Delay of each kill after the work began (ms). */
  killedAtMs: number[];
  /** How far each run got when killed. */
  progress: string[];
  /** Time from each restart until no problem was left (ms). */
  settledMs: number[];
}

/** Runs `runs` kill-and-restart rounds of `work` on `world`'s running agent. */
export async function killLoop(
  world: AgentWorld,
  work: KillLoopWork,
  o: {
    runs: number;
    rng: Rng;
    /** The kill comes a uniform draw in [0, windowMs] after the work began… */
    windowMs: number;
    /** …unless this waits for the kill point itself (e.g. a drawn share of a download sent). */
    waitToKill?: (i: number, rng: Rng) => Promise<void>;
    settleTimeoutMs?: number;
  },
): Promise<KillLoopResult> {
  const out: KillLoopResult = { killedAtMs: [], progress: [], settledMs: [] };
  for (let i = 0; i < o.runs; i++) {
    const began = Date.now();
    await work.begin(i);
    if (o.waitToKill) await o.waitToKill(i, o.rng);
    else await sleep(o.rng.int(0, o.windowMs));
    const delay = Date.now() - began;
    await world.agent().kill();
    out.killedAtMs.push(delay);
    out.progress.push(await work.progress(i));
    world.start();
    const t0 = Date.now();
    let last: string[] = [];
    await waitFor(
      `run ${i} (killed after ${delay} ms): one copy, nothing leaked`,
      async () => {
        last = await work.problems(i);
        return last.length === 0;
      },
      { timeoutMs: o.settleTimeoutMs ?? 120_000, intervalMs: 500 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; still: ${last.join('; ')}`);
    });
    out.settledMs.push(Date.now() - t0);
    await work.end(i);
  }
  return out;
}
