/**
 * The oracle against the real system: a steady Workload counts nothing; faults made on purpose are counted —
 * a container planted with an agent's labels while that agent is stopped (so it cannot remove it) is an orphan,
 * a process shaped as a runsc sandbox of the watched dockerd (its --root) without a container is a leak while
 * one of another root is not, and an instance whose sandbox crashed (Docker restarts it in place) is a restart
 * nothing asked for unless a fault touching its host was declared.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUSYBOX_IMAGE, docker } from '../../deploy/stack/index.js';
import { waitFor } from '../harness/index.js';
import { nginxWorkload } from '../harness/objects.js';
import { pauseProcess, sigkill } from './faults.js';
import { reportFigures } from './figures.js';
import { argsOf, type Oracle, sandboxOf, startOracle } from './oracle.js';
import { type ChaosAgent, startTopology, type Topology } from './topology.js';

let t: Topology;
let oracle: Oracle;

beforeAll(async () => {
  t = await startTopology({ natsMembers: 1, coordinators: 1, locations: 2, agentsPerLocation: 1 });
  await t.waitForHostsReady();
  oracle = await startOracle(t, { startGraceMs: 60_000, orphanGraceMs: 5_000, healGraceMs: 5_000 });
  await t.kubectl(['create', 'namespace', 'oracle']);
  await t.kubectl(['apply', '-n', 'oracle', '-f', '-'], {
    input: nginxWorkload({ name: 'steady', replicas: 2, group: 'compute.datumapis.com' }),
  });
  await waitFor(
    'steady ready',
    async () =>
      (
        await t.kubectl([
          'get',
          'workload',
          'steady',
          '-n',
          'oracle',
          '-o',
          'jsonpath={.status.readyReplicas}',
        ])
      ).stdout === '2',
    { timeoutMs: 180_000, intervalMs: 1000 },
  );
}, 600_000);
afterAll(async () => {
  await oracle?.stop();
});

/** The running containers of the steady Workload's instance on `host`. */
const containersOf = async (host: string) =>
  (
    await docker([
      'ps',
      '-q',
      '--no-trunc',
      '--filter',
      `label=edgeplane.dev/host=${host}`,
      '--filter',
      'label=edgeplane.dev/workload=steady',
    ])
  ).stdout
    .split('\n')
    .filter(Boolean);

describe('the oracle on the real system', () => {
  it('counts nothing while a Workload runs undisturbed', async () => {
    const from = Date.now();
    await waitFor(
      '10 samples with two copies running',
      () => {
        const s = oracle.samples.filter(
          (x) => x.at >= from && x.copies?.filter((c) => c.running).length === 2,
        );
        return s.length >= 10;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const c = oracle.counts({ from });
    expect(c).toMatchObject({ lostReplicaSeconds: 0, duplicateSeconds: 0, orphans: 0, needlessRestarts: 0 });
    expect(oracle.samples.at(-1)!.intended).toHaveLength(2);
    // The leak detection is armed: the dockerd's runsc root is known, from its containers' sandboxes.
    expect(oracle.runscRoots().length).toBeGreaterThan(0);
  });

  it('counts a container no intent owns that its stopped agent cannot remove', async () => {
    const agent = t.agents[0]!;
    const heal = pauseProcess(agent);
    const name = `chaos-orphan-${t.run}`;
    try {
      const r = await docker([
        'run',
        '-d',
        '--name',
        name,
        '--label',
        `edgeplane.dev/host=${agent.host}`,
        '--label',
        'edgeplane.dev/namespace=oracle',
        '--label',
        'edgeplane.dev/instance=ghost-0',
        BUSYBOX_IMAGE,
        'sleep',
        '600',
      ]);
      expect(r.code).toBe(0);
      await waitFor('the orphan counted', () => oracle.counts().orphans >= 1, {
        timeoutMs: 60_000,
        intervalMs: 500,
      });
    } finally {
      await heal();
    }
    expect(oracle.counts().details.some((d) => d.startsWith('orphan copy:oracle/ghost-0@'))).toBe(true);
    // The agent, running again, removes it: it was the agent's to remove.
    await waitFor(
      'the agent removing the planted container',
      async () => {
        const ps = await docker(['ps', '-aq', '--filter', `name=${name}`]);
        return ps.stdout.trim() === '';
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
  });

  it('counts a sandbox of the watched dockerd that runs no container of it, and none of another root', async () => {
    const [root] = oracle.runscRoots();
    expect(root).toBeDefined();
    // Processes shaped as runsc starts its sandboxes (argv[0] runsc-sandbox, --root, boot --bundle=<…>/<id>),
    // for containers the dockerd does not run: one under its root (a leak), one under another dockerd's root.
    const standIn = (r: string) => {
      const id = crypto.randomBytes(32).toString('hex');
      const p = spawn('sh', ['-c', 'sleep 600; :', `--root=${r}`, 'boot', `--bundle=/nonexistent/${id}`], {
        argv0: 'runsc-sandbox',
        stdio: 'ignore',
      });
      return { id, p };
    };
    const ours = standIn(root!);
    const other = standIn('/nonexistent/exec/runtime-runc/moby');
    try {
      expect(sandboxOf(argsOf(ours.p.pid!))).toEqual({ root, container: ours.id });
      await waitFor(
        'the leaked sandbox counted',
        () => oracle.counts().details.some((d) => d.startsWith(`orphan sandbox:${ours.id.slice(0, 12)}`)),
        { timeoutMs: 60_000, intervalMs: 500 },
      );
      expect(oracle.counts().details.some((d) => d.includes(other.id.slice(0, 12)))).toBe(false);
    } finally {
      ours.p.kill('SIGKILL');
      other.p.kill('SIGKILL');
    }
  });

  it('counts an instance restarted under an untouched host, and not when a fault touched it', async () => {
    const before = oracle.counts().needlessRestarts;
    const [a, b] = t.agents as [ChaosAgent, ChaosAgent];
    // A crash, not a stop: Docker's restart policy brings the container back in place (same id, new start).
    const crash = async (host: string) => {
      const [id] = await containersOf(host);
      expect(id, `a running container of steady on ${host}`).toBeDefined();
      // For runsc, a container's pid is its sandbox's.
      const pid = Number((await docker(['inspect', '--format', '{{.State.Pid}}', id!])).stdout.trim());
      const sandbox = sandboxOf(argsOf(pid));
      expect(sandbox?.container, `the runsc sandbox of ${id} (pid ${pid})`).toBe(id);
      expect(oracle.runscRoots()).toContain(sandbox!.root);
      await sigkill(pid);
    };
    await crash(a.host);
    await waitFor('the restart counted', () => oracle.counts().needlessRestarts > before, {
      timeoutMs: 120_000,
      intervalMs: 1000,
    });
    // The same on the other host, declared as a fault touching it: excused.
    const restartedB = () =>
      oracle.counts().details.some((d) => d.startsWith('needless restart') && d.includes(b.host));
    const w = oracle.faultStarted('test/instance-crash', [b.host]);
    const idsBefore = oracle.samples.at(-1)!.copies!.find((c) => c.host === b.host)!.ids;
    await crash(b.host);
    await waitFor(
      'b running again with a new start',
      () => oracle.samples.at(-1)?.copies?.some((c) => c.host === b.host && c.running && c.ids !== idsBefore),
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    oracle.faultHealed(w);
    const c = oracle.counts();
    expect(restartedB()).toBe(false);
    expect(c.needlessRestarts).toBe(before + 1);
    reportFigures({
      scenario: 'oracle/real-system',
      passed: true,
      samples: c.samples,
      orphans: c.orphans,
      needlessRestarts: c.needlessRestarts,
      lostInFaultSeconds: c.lostInFaultSeconds,
      feedMessages: oracle.figures().feedMessages,
    });
  }, 400_000);
});
