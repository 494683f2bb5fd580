import { defineConfig } from 'vitest/config';

/**
 * The chaos scenarios `npm test` runs (short settings), one per kind of fault; every scenario, at full length,
 * runs under `npm run chaos` (vitest.chaos.config.ts). CI has 90 minutes on 2 cores, and the whole chaos suite
 * even at short settings took over half of that, so a scenario joins this list only when it covers a fault no
 * listed one does. test/chaos/README.md says how to choose.
 */
export const CHAOS_IN_NPM_TEST = [
  'test/chaos/topology.test.ts', // the harness: every link through its proxy
  'test/chaos/partition/agent-cut.test.ts', // partitions: autonomy, replacement at Lost, the extra copy removed
  'test/chaos/fencing/leader-pause.test.ts', // pauses: no write by a paused ex-leader, no spurious Lost
  'test/chaos/pause/coordinator-clock.test.ts', // clock steps on the coordinator: no mass Lost
  'test/chaos/fencing/bucket-repair.test.ts', // lost or recreated KV data: repaired, nothing removed blind
  'test/chaos/process/agent-crash.test.ts', // kill -9 mid-create: exactly one copy, no orphan
  'test/chaos/process/coordinator-kill.test.ts', // kill -9 of the coordinator mid-change: convergence
  'test/chaos/docker/dockerd-faults.test.ts', // dockerd paused and killed: Unknown with a reason, nothing blind
  'test/chaos/disk/state-disk-full.test.ts', // a full disk: DiskPressure, nothing torn, nothing blind, recovery
  'test/chaos/process/agent-memory.test.ts', // an agent short of memory: runs on or OOM-killed, instances kept
  'test/chaos/hostile/host-reports.test.ts', // hostile hosts with real credentials
  'test/chaos/fuzz/decoders.test.ts', // fuzzing: decoders never throw, nothing changes on a bad message
  'test/chaos/fuzz/models.test.ts', // model-based runs under a fake clock
  'test/chaos/fuzz/leader-model.test.ts', // leader election, model-based under a fake clock (2 s)
  'test/chaos/nats/member-store-restored.test.ts', // NATS: a member's older store: no acknowledged write lost (10 s)
  'test/chaos/fuzz/permissions.test.ts', // our NATS permission model against the real nats-server
];

// Integration tests start real daemons (nats-server, kube-apiserver, dockerd, qemu); they get generous
// timeouts and run one file at a time on the 2-core machines we test on, so they do not starve each other.
export default defineConfig({
  test: {
    include: ['test/{unit,integration,e2e}/**/*.test.ts', ...CHAOS_IN_NPM_TEST],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    fileParallelism: false,
    reporters: ['default'],
  },
});
