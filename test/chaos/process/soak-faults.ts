/** The soak faults of the process scenarios (vitest-free). */
import type { SoakFault } from '../soak-fault.js';
import { createMemoryCgroup } from './memory-cgroup.js';

/**
 * Soak fault `process/agent-memory-squeeze`: an agent moved into a memory cgroup that lets it allocate only a
 * few MiB more (its earlier charges stay outside) for the hold time. It runs on or is OOM-killed; the heal
 * removes the cgroup and, if it was killed, starts it again (as systemd would). Its host is touched (a kill costs
 * what an agent kill costs); every other host must see nothing.
 */
export const agentMemorySqueeze: SoakFault = {
  name: 'process/agent-memory-squeeze',
  holdMs: [20_000, 60_000],
  inject: async (t, rng) => {
    const a = rng.pick(t.agents);
    const limitMiB = rng.int(4, 16);
    const cg = createMemoryCgroup(limitMiB * 1024 * 1024);
    cg.add(a.proc.pid);
    let killed = false;
    return {
      detail: `agent ${a.host} in a memory cgroup allowing ${limitMiB} MiB more`,
      touchedHosts: [a.host],
      heal: async () => {
        const s = cg.stats();
        cg.remove();
        killed = Boolean(a.proc.exit) || s.oomKills > 0;
        if (a.proc.exit) await a.restart();
      },
      verify: async () => ({ passed: !a.proc.exit, figures: { oomKilled: killed } }),
    };
  },
};
