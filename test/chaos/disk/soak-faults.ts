/** The soak faults of the disk scenarios (vitest-free). */
import type { SoakFault } from '../soak-fault.js';

/**
 * Soak fault `disk/agent-state-full`: an agent's state directory (a small tmpfs: the topology's
 * `agentStateFsMiB`) filled up for the hold time. Nothing may move — no instance lost, restarted or removed on
 * any host, that one included (touchedHosts is empty) —, and the agent must still run afterwards.
 */
export const stateDiskFull: SoakFault = {
  name: 'disk/agent-state-full',
  holdMs: [20_000, 60_000],
  applies: (t) => t.agents.some((a) => a.stateFs),
  inject: async (t, rng) => {
    const a = rng.pick(t.agents.filter((x) => x.stateFs));
    const bytes = a.stateFs!.fill();
    return {
      detail: `filled agent ${a.host}'s state disk (${bytes} bytes)`,
      touchedHosts: [],
      heal: async () => a.stateFs!.release(),
      verify: async () => ({ passed: !a.proc.exit, figures: { agentRunning: !a.proc.exit } }),
    };
  },
};
