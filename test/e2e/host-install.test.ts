/**
 * Proof on a real host: a fresh Debian 12 (debootstrap, systemd as PID 1; test/harness/debian-host.ts) installs
 * the agent from the package `npm run package` builds, enrolls with one `edge-agent join` (a token from
 * `edgectl hosts token create`) against a nats-server on loopback in operator mode, and runs a gVisor instance a
 * real coordinator places. Restarting the agent and upgrading the package restart no instance; `apt-get remove`
 * leaves it running (a reinstall adopts it again); `apt-get purge` leaves nothing.
 *
 * Slow: ~3 min on the 2 busy cores of CI (two `--fast` package builds ~1.5 min, the stack, the steps ~1 min), plus
 * ~2.5 min the first time for debootstrap (cached in /var/cache/edgeplane after).
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator } from '../../deploy/stack/edgeplane.js';
import {
  docker,
  ensureDocker,
  kubectl,
  REPO_DIR,
  removeContainersByLabel,
  startKubeApi,
  startNatsServer,
} from '../../deploy/stack/index.js';
import { initOperator } from '../../edgectl/enroll.js';
import { connectNats } from '../../shared/nats/connect.js';
import { decode, HostReport } from '../../shared/nats/messages.js';
import { Subjects } from '../../shared/nats/subjects.js';
import { type DebianHost, startDebianHost } from '../harness/debian-host.js';
import { cleanup, tempDir } from '../harness/index.js';

const run = crypto.randomBytes(3).toString('hex');
const HOST = `pkg-${run}`;
const LOCATION = `pkg-loc-${run}`;
const subjects = new Subjects();
const version = (
  JSON.parse(fs.readFileSync(path.join(REPO_DIR, 'package.json'), 'utf8')) as { version: string }
).version;
const NEWER = `${version}+test1`;

let host: DebianHost;
let nc: NatsConnection;
let kubeconfig: string;
let natsUrl: string;
let adminCreds: string;

const k = async (args: string[], input?: string) => {
  const r = await kubectl(kubeconfig, args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Containers of the test host on the machine's dockerd: id → start time. */
async function containers(): Promise<Record<string, string>> {
  const ps = await docker(['ps', '-aq', '--no-trunc', '--filter', `label=edgeplane.dev/host=${HOST}`]);
  const out: Record<string, string> = {};
  for (const id of ps.stdout.split('\n').filter(Boolean)) {
    const r = await docker(['inspect', '--format', '{{.State.StartedAt}} {{.HostConfig.Runtime}}', id]);
    out[id] = r.stdout.trim();
  }
  return out;
}

/** The next report of an agent started after `since` that shows the instance ready. */
async function readyReportAfter(sub: Subscription, since: number): Promise<HostReport> {
  for await (const m of sub) {
    const r = decode(HostReport, m.data);
    if (Date.parse(r.startedAt) >= since && r.instances.some((i) => i.ready)) return r;
  }
  throw new Error('report subscription closed');
}

async function agentPid(): Promise<number> {
  return Number((await host.ok('systemctl show -p MainPID --value edge-agent')).trim());
}

/** Restarts nothing: after `action`, a new agent process reports the instance ready in the same container. */
async function expectNothingRestarted(action: () => Promise<unknown>) {
  const before = await containers();
  expect(Object.keys(before)).toHaveLength(1);
  const pid = await agentPid();
  const sub = nc.subscribe(subjects.hostReport(HOST));
  const since = Date.now() - 1000;
  await action();
  const report = await Promise.race([
    readyReportAfter(sub, since),
    new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no report from a new agent')), 90_000)),
  ]).finally(() => sub.unsubscribe());
  expect(report.instances.map((i) => i.phase)).toEqual(['Running']);
  expect(await agentPid()).not.toBe(pid);
  expect(await containers()).toEqual(before);
}

describe('the agent installed from its Debian package on a fresh Debian 12 host', () => {
  beforeAll(async () => {
    await ensureDocker();
    const dir = tempDir('edgeplane-host-install-');
    const pkgs = path.join(dir, 'packages');
    for (const v of [version, NEWER]) {
      execFileSync('npx', ['tsx', 'deploy/package/build.ts', '--fast', '--version', v, '--out', pkgs], {
        cwd: REPO_DIR,
        stdio: ['ignore', 'ignore', 'inherit'],
      });
    }
    // NATS in operator mode (`edgectl nats init`): the host gets its identity by enrolling with a join token.
    const { files, setup } = await initOperator(path.join(dir, 'operator'), '/unused', subjects);
    adminCreds = files.adminCreds;
    const [nats, kube] = await Promise.all([
      startNatsServer({ dir: path.join(dir, 'nats'), operator: setup }),
      startKubeApi({ dir: path.join(dir, 'kube'), crdDir: path.join(REPO_DIR, 'deploy/crds') }),
    ]);
    cleanup(() => nats.stop());
    cleanup(() => kube.stop());
    natsUrl = nats.url;
    kubeconfig = kube.kubeconfigPath;
    const coord = startCoordinator({
      dir: path.join(dir, 'coordinator'),
      kubeconfig,
      nats: [nats.url],
      args: ['--enroll-keys', files.enrollKeys, '--nats-sys-creds', files.coordinatorSysCreds],
      env: { EDGE_NATS_CREDS: files.coordinatorCreds },
    });
    cleanup(() => coord.stop());
    nc = await connectNats({ servers: [nats.url], name: 'host-install test', creds: files.coordinatorCreds });
    cleanup(() => nc.close());
    host = await startDebianHost({
      label: `edgeplane.test=host-install-${run}`,
      mounts: { [pkgs]: '/pkgs' },
    });
    cleanup(() => removeContainersByLabel(`edgeplane.dev/host=${HOST}`));
  }, 900_000);

  it('installs with apt from the package alone (its runtime included), enabled by nobody yet', async () => {
    const t0 = Date.now();
    await host.ok(
      `apt-get install -y --no-install-recommends /pkgs/edgeplane-agent_${version}_amd64.deb`,
      300_000,
    );
    console.log(`apt-get install: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(await host.ok('edge-agent --version')).toContain(version);
    expect(await host.ok('edgectl --help')).toContain('Usage: edgectl');
    expect(await host.ok('command -v node nodejs npm || echo none')).toBe('none\n');
    expect((await host.sh('systemctl is-enabled edge-agent')).stdout.trim()).toBe('disabled');
    console.log(
      `systemd-analyze security: ${(await host.ok('systemd-analyze security edge-agent | tail -1')).trim()}`,
    );
  }, 300_000);

  it('enrolls with a join token in one command, becomes Ready and runs a gVisor instance the coordinator places', async () => {
    const token = execFileSync(
      process.execPath,
      [path.join(REPO_DIR, 'dist/edgectl/main.js'), '--nats', natsUrl, '--creds', adminCreds].concat([
        'hosts',
        'token',
        'create',
        '--location',
        LOCATION,
        '--ttl',
        '10m',
      ]),
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    ).trim();
    // What the operator adds to the packaged conffile (instance ports on loopback, a 2 s heartbeat) survives the
    // join, as does the conffile's own metricsAddress (health checks below).
    await host.ok(
      `cat >> /etc/edgeplane/agent.yaml <<'EOF'\npublishAddress: 127.0.0.1\nheartbeatMs: 2000\ncpu: "2"\nmemory: 2Gi\nEOF`,
    );
    const t0 = Date.now();
    await host.ok(`edge-agent join --nats ${natsUrl} --token ${token} --host ${HOST}`);
    expect(await host.ok('stat -c %a /etc/edgeplane/nats.creds')).toBe('600\n');
    expect(await host.ok('cat /etc/edgeplane/agent.yaml')).toContain('publishAddress: 127.0.0.1');
    await until('host Ready', async () =>
      (await k(['get', 'host', HOST, '-o', 'jsonpath={.status.state}'])) === 'Ready' ? true : undefined,
    ).catch(async (err: Error) => {
      const journal = await host.sh(
        'systemctl status edge-agent --no-pager; journalctl -u edge-agent --no-pager -n 30',
      );
      throw new Error(`${err.message}\n${journal.stdout}`);
    });
    console.log(`edge-agent join → host Ready: ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    await k(['create', 'namespace', 'pkg']);
    await k(
      ['apply', '-n', 'pkg', '-f', '-'],
      [
        'apiVersion: compute.datumapis.com/v1alpha1',
        'kind: Workload',
        'metadata: {name: sleeper}',
        'spec:',
        '  replicas: 1',
        '  template:',
        '    spec:',
        '      machineType: e2-micro',
        '      image: edgeplane/busybox:latest',
        '      command: [sleep, "1000000"]',
        '',
      ].join('\n'),
    );
    await until('Workload ready', async () =>
      (await k(['get', 'workload', 'sleeper', '-n', 'pkg', '-o', 'jsonpath={.status.readyReplicas}'])) === '1'
        ? true
        : undefined,
    );
    expect(Object.values(await containers()).map((v) => v.split(' ')[1])).toEqual(['runsc']);
    // Idle resident memory of the installed agent, once it has settled.
    await new Promise((r) => setTimeout(r, 10_000));
    const rss = Number((await host.ok(`ps -o rss= -p ${await agentPid()}`)).trim());
    console.log(`agent RSS as installed: ${(rss / 1024).toFixed(1)} MiB`);
    expect(rss).toBeGreaterThan(0);
    // Health: the packaged agent.yaml serves /healthz and /readyz on loopback; `edge-agent health` asks them.
    expect(await host.ok('edge-agent health')).toMatch(/\/healthz: 200 ok/);
    expect(await host.ok('edge-agent health --ready')).toMatch(/\/readyz: 200 ok/);
    // Liveness: the timer runs while the agent does, and one check passes without restarting it.
    expect((await host.sh('systemctl is-active edge-agent-liveness.timer')).stdout.trim()).toBe('active');
    const pid = await agentPid();
    await host.ok('systemctl start edge-agent-liveness.service');
    expect(await host.ok('systemctl show -p Result --value edge-agent-liveness.service')).toBe('success\n');
    expect(await agentPid()).toBe(pid);
    // A /healthz that does not answer (the check pointed at a closed port) three times in a row restarts it.
    const dropIn = '/run/systemd/system/edge-agent-liveness.service.d';
    await host.ok(
      `mkdir -p ${dropIn} && printf '[Service]\\nEnvironment=EDGE_METRICS_ADDRESS=127.0.0.1:1\\n' > ${dropIn}/test.conf && systemctl daemon-reload`,
    );
    await host.ok('systemctl start edge-agent-liveness.service', 120_000);
    await host.ok(`rm -r ${dropIn} && systemctl daemon-reload`);
    expect(await host.ok('journalctl -u edge-agent-liveness --no-pager -n 20')).toMatch(/failed 3 times/);
    await until('the agent restarted and Ready', async () => {
      const now = await agentPid();
      return now && now !== pid && (await host.sh('edge-agent health --ready')).code === 0 ? true : undefined;
    });
  }, 300_000);

  it('systemctl restart edge-agent restarts no instance', async () => {
    await expectNothingRestarted(() => host.ok('systemctl restart edge-agent'));
  });

  it('upgrading the package restarts the agent and no instance', async () => {
    await expectNothingRestarted(() =>
      host.ok(`apt-get install -y --no-install-recommends /pkgs/edgeplane-agent_${NEWER}_amd64.deb`, 300_000),
    );
    expect(await host.ok('dpkg-query -W edgeplane-agent')).toBe(`edgeplane-agent\t${NEWER}\n`);
  }, 300_000);

  it('apt-get remove stops the agent and leaves the instance running', async () => {
    const before = await containers();
    await host.ok('apt-get remove -y edgeplane-agent', 120_000);
    expect((await host.sh('systemctl is-active edge-agent')).stdout.trim()).not.toBe('active');
    expect((await host.sh('systemctl is-active edge-agent-liveness.timer')).stdout.trim()).not.toBe('active');
    expect(await host.ok('pgrep -f "[/]usr/lib/edgeplane/" || echo none')).toBe('none\n');
    expect(await containers()).toEqual(before);
  });

  it('reinstalling after remove starts the enabled agent again, which adopts the instance', async () => {
    await expectNothingRestarted(() =>
      host.ok(`apt-get install -y --no-install-recommends /pkgs/edgeplane-agent_${NEWER}_amd64.deb`, 300_000),
    );
  }, 300_000);

  it('apt-get purge leaves no container, process, unit, state or credential', async () => {
    await host.ok('apt-get purge -y edgeplane-agent', 120_000);
    expect(await containers()).toEqual({});
    const vols = await docker(['volume', 'ls', '-q', '--filter', `label=edgeplane.dev/host=${HOST}`]);
    expect(vols.stdout.trim()).toBe('');
    const left = await host.ok(
      'ls -d /etc/edgeplane /var/lib/edgeplane /run/edgeplane /etc/default/edge-agent /usr/lib/edgeplane ' +
        '/lib/systemd/system/edge-agent* /etc/systemd/system/*/edge-agent* 2>/dev/null; ' +
        'systemctl list-unit-files "edge-*" --no-legend; systemctl list-units "edge-*" --no-legend; true',
    );
    expect(left).toBe('');
    // No process of Edgeplane (the pattern does not match its own command line).
    expect(await host.ok('pgrep -af "[e]dgeplane|[e]dge-agent" || true')).toBe('');
  });
});
