/**
 * `edgectl logs` / `edgectl exec` (and `kubectl edge …`) end to end on the real parts, with NATS security on:
 * nats-server with per-identity nkey users made by `edgectl credentials` (coordinator, one host, operator alice,
 * monitor), kube-apiserver, the coordinator and an agent running a two-container Workload in gVisor (runsc).
 *
 * Shows: logs with --tail, --since and -f (follow sees new lines live); -c picks a container; exec returns
 * output and exit code (edgectl exits with it) and is recorded as an Event on the Instance naming alice; clear
 * errors for a missing instance, container and host; the monitor identity and an operator posing as another are
 * refused by nats-server; the kubectl plugin; every service reports its version in `$SRV.INFO`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Svcm } from '@nats-io/services';
import { beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator } from '../../deploy/stack/edgeplane.js';
import {
  BUSYBOX_IMAGE,
  ensureDocker,
  type KubeApiHandle,
  kubectl,
  type NatsServerHandle,
  REPO_DIR,
} from '../../deploy/stack/index.js';
import type { Proc } from '../../deploy/stack/proc.js';
import { generateIdentity, writeIdentity } from '../../edgectl/credentials.js';
import { connectNats } from '../../shared/nats/connect.js';
import { authorizationBlock } from '../../shared/nats/permissions.js';
import { Subjects } from '../../shared/nats/subjects.js';
import { VERSION } from '../../shared/version.js';
import { startAgentForTest, startNatsAndKube } from '../harness/edge.js';
import { cleanup, tempDir, waitFor } from '../harness/index.js';

const EDGECTL = path.join(REPO_DIR, 'dist/edgectl/main.js');
const PLUGIN = path.join(REPO_DIR, 'dist/edgectl/kubectl-edge.js');
const subjects = new Subjects('edge');
const LOCATION = 'us-central1-a';

let nats: NatsServerHandle;
let kube: KubeApiHandle;
let agent: Proc;
let host: string;
let dir: string;
const creds: Record<string, string> = {};
let instance: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command to completion (killed after `timeoutMs`). */
function run(
  command: string,
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve) => {
    const p = spawn(command, args, { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** edgectl as `who` (an identity's credentials). */
function edgectl(who: string, args: string[]): Promise<Run> {
  return run(process.execPath, [EDGECTL, '--nats', nats.url, '--creds', creds[who]!, ...args]);
}

/** How long the waits of this file wait (unless they say): placement, image start, the feed. */
const WAIT = { timeoutMs: 120_000, intervalMs: 500 };

const lines = (s: string) => s.split('\n').filter(Boolean);

/** A container printing 20 boot lines at once, then a tick (stdout) and a warning (stderr) every second. */
const APP = [
  'i=0; while [ $i -lt 20 ]; do echo "boot $i"; i=$((i+1)); done;',
  'i=0; while true; do echo "tick $i $(date +%s)"; echo "warn $i" >&2; i=$((i+1)); sleep 1; done',
].join(' ');

const workload = `apiVersion: compute.miloapis.com/v1alpha1
kind: Workload
metadata:
  name: ops-web
spec:
  replicas: 1
  template:
    spec:
      containers:
      - name: app
        image: ${BUSYBOX_IMAGE}
        command: ["sh", "-c", ${JSON.stringify(APP)}]
        resources:
          requests: { cpu: 100m, memory: 64Mi }
      - name: side
        image: ${BUSYBOX_IMAGE}
        command: ["sh", "-c", "echo side ready; exec sleep 100000"]
        resources:
          requests: { cpu: 100m, memory: 64Mi }
`;

beforeAll(async () => {
  await ensureDocker();
  dir = tempDir('edgeplane-ops-');
  host = `ops-${crypto.randomBytes(3).toString('hex')}`;
  const ids = [
    generateIdentity(subjects, { role: 'coordinator' }),
    generateIdentity(subjects, { role: 'host', host, location: LOCATION }),
    generateIdentity(subjects, { role: 'operator', name: 'alice' }),
    generateIdentity(subjects, { role: 'monitor' }),
  ];
  const users: string[] = [];
  for (const id of ids) {
    const files = writeIdentity(path.join(dir, 'creds'), id);
    creds[id.name] = files.seedFile;
    users.push(fs.readFileSync(files.configFile, 'utf8'));
  }
  ({ nats, kube } = await startNatsAndKube(dir, { natsConfigExtra: authorizationBlock(users) }));
  const coordinator = startCoordinator({
    dir: path.join(dir, 'coordinator'),
    kubeconfig: kube.kubeconfigPath,
    nats: [nats.url],
    env: { EDGE_NATS_CREDS: creds.coordinator! },
  });
  cleanup(() => coordinator.stop());
  agent = startAgentForTest({
    dir: path.join(dir, 'agent'),
    host,
    location: LOCATION,
    provider: 'gcp',
    region: 'us-central1',
    zone: LOCATION,
    nats: [nats.url],
    cpu: '8',
    memory: '16Gi',
    args: ['--nats-creds', creds[host]!],
  });
  const k = (args: string[], input?: string) => kubectl(kube.kubeconfigPath, args, input ? { input } : {});
  await waitFor(
    'the host to be Ready',
    async () => (await k(['get', 'hosts', '-o', 'name'])).stdout.includes(host),
    WAIT,
  );
  const applied = await k(['apply', '-f', '-'], workload);
  expect(applied.code, applied.stderr).toBe(0);
  instance = await waitFor(
    'the instance to run',
    async () => {
      const r = await k([
        'get',
        'instances',
        '-l',
        'workload=ops-web',
        '-o',
        'jsonpath={.items[0].metadata.name} {.items[0].status.phase}',
      ]);
      const [name, phase] = r.stdout.split(' ');
      return phase === 'Running' ? name : undefined;
    },
    WAIT,
  );
  // The feed has it on the host, and the app has ticked a few times (for --since and --tail).
  await waitFor(
    'the feed to show it Running',
    async () => {
      const r = await edgectl('alice', ['instances', '-o', 'json']);
      return r.stdout.includes(`"phase": "Running"`) ? true : undefined;
    },
    WAIT,
  );
  await new Promise((r) => setTimeout(r, 4000));
}, 600_000);

describe('edgectl logs', () => {
  it('--tail N gives the last N lines of the default (first) container, stdout and stderr', async () => {
    const r = await edgectl('alice', ['logs', instance, '--tail', '4']);
    expect(r.code, r.stderr).toBe(0);
    const all = [...lines(r.stdout), ...lines(r.stderr)];
    expect(all).toHaveLength(4);
    expect(lines(r.stdout).every((l) => l.startsWith('tick '))).toBe(true);
    expect(lines(r.stderr).every((l) => l.startsWith('warn '))).toBe(true);
  });

  it('without --tail everything from the first line; --since only recent output', async () => {
    const all = await edgectl('alice', ['logs', instance]);
    expect(all.code, all.stderr).toBe(0);
    expect(lines(all.stdout).slice(0, 20)).toEqual(Array.from({ length: 20 }, (_, i) => `boot ${i}`));
    const since = await edgectl('alice', ['logs', instance, '--since', '2s']);
    expect(since.code, since.stderr).toBe(0);
    const ticks = lines(since.stdout);
    expect(ticks.length).toBeGreaterThan(0);
    expect(ticks.some((l) => l.startsWith('boot'))).toBe(false);
    const now = Date.now() / 1000;
    for (const t of ticks) expect(now - Number(t.split(' ')[2])).toBeLessThan(6);
  });

  it('-f follows new output live until interrupted', async () => {
    const started = Date.now() / 1000;
    const p: ChildProcess = spawn(process.execPath, [
      EDGECTL,
      '--nats',
      nats.url,
      '--creds',
      creds.alice!,
      'logs',
      instance,
      '-f',
      '--tail',
      '0',
    ]);
    cleanup(() => p.kill('SIGKILL'));
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
    await waitFor(
      'three new ticks',
      () => lines(out).filter((l) => Number(l.split(' ')[2]) >= Math.floor(started)).length >= 3,
      { ...WAIT, timeoutMs: 20_000 },
    );
    p.kill('SIGINT');
    expect(await exited).toBe(0);
    const seq = lines(out).map((l) => Number(l.split(' ')[1]));
    // In order, none skipped or doubled.
    for (let i = 1; i < seq.length; i++) expect(seq[i]).toBe(seq[i - 1]! + 1);
  });

  it('-c picks a container; a missing container, instance or namespace is a clear error', async () => {
    const side = await edgectl('alice', ['logs', instance, '-c', 'side']);
    expect(side.code, side.stderr).toBe(0);
    expect(side.stdout).toBe('side ready\n');
    const noContainer = await edgectl('alice', ['logs', instance, '-c', 'nope']);
    expect(noContainer.code).toBe(1);
    expect(noContainer.stderr).toContain(`has no container nope; it has: app, side`);
    const noInstance = await edgectl('alice', ['logs', 'no-such-instance']);
    expect(noInstance.code).toBe(1);
    expect(noInstance.stderr).toContain('instance default/no-such-instance not found');
    expect(noInstance.ms).toBeLessThan(10_000);
    const otherNs = await edgectl('alice', ['logs', `other/${instance}`]);
    expect(otherNs.stderr).toContain(`instance other/${instance} not found`);
  });
});

describe('edgectl exec', () => {
  it('returns stdout, stderr and the exit code, and records an Event naming the operator', async () => {
    const r = await edgectl('alice', ['exec', instance, '--', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
    expect(r.code).toBe(7);
    const side = await edgectl('alice', ['exec', instance, '-c', 'side', '--', 'cat', '/etc/hostname']);
    expect(side.code, side.stderr).toBe(0);
    const events = await waitFor(
      'the Exec events',
      async () => {
        const e = await kubectl(kube.kubeconfigPath, [
          'get',
          'events',
          '--field-selector',
          `involvedObject.name=${instance},reason=Exec`,
          '-o',
          'jsonpath={range .items[*]}{.message}{"\\n"}{end}',
        ]);
        return lines(e.stdout).length >= 2 ? lines(e.stdout) : undefined;
      },
      { ...WAIT, timeoutMs: 20_000 },
    );
    expect(events).toContain(
      `operator alice ran exec in container app on host ${host}: sh -c "echo out; echo err >&2; exit 7"`,
    );
    expect(events).toContain(`operator alice ran exec in container side on host ${host}: cat /etc/hostname`);
  });

  it('streams large output whole, in bounded chunks (8 MiB: at least 32 pulls)', async () => {
    const size = 8 * 1024 * 1024;
    const r = await edgectl('alice', [
      'exec',
      instance,
      '--',
      'sh',
      '-c',
      `head -c ${size} /dev/zero | tr '\\0' x`,
    ]);
    expect(r.code, r.stderr.slice(0, 500)).toBe(0);
    expect(r.stdout.length).toBe(size);
    expect(/^x+$/.test(r.stdout)).toBe(true);
    console.log(
      `exec output: ${size / 2 ** 20} MiB in ${r.ms} ms (${((size / 2 ** 20 / r.ms) * 1000).toFixed(1)} MiB/s)`,
    );
  });

  it('refuses -it clearly, and a missing container', async () => {
    const it = await edgectl('alice', ['exec', '-it', instance, '--', 'sh']);
    expect(it.code).toBe(1);
    expect(it.stderr).toContain('-i/-t (an interactive terminal) is not supported');
    const nope = await edgectl('alice', ['exec', instance, '-c', 'nope', '--', 'true']);
    expect(nope.code).toBe(1);
    expect(nope.stderr).toContain('has no container nope');
  });
});

describe('permissions (real nats-server)', () => {
  it('refuse the monitor identity and an operator posing as another', async () => {
    const monitor = await edgectl('monitor', ['logs', instance, '--tail', '1']);
    expect(monitor.code).toBe(1);
    expect(monitor.stderr).toMatch(/the NATS server refused edge\.ops\.[^ ]+\.logs\.monitor/);
    const monitorExec = await edgectl('monitor', ['exec', instance, '--', 'true']);
    expect(monitorExec.stderr).toContain('refused');
    const posing = await edgectl('alice', ['exec', instance, '--operator', 'bob', '--', 'true']);
    expect(posing.code).toBe(1);
    expect(posing.stderr).toMatch(/refused edge\.ops\.[^ ]+\.exec\.bob/);
    // Directly too: the server answers the request with a permissions violation.
    const nc = await connectNats({
      servers: [nats.url],
      name: 'test',
      reconnectForever: false,
      creds: creds.monitor!,
    });
    cleanup(() => nc.close());
    await expect(
      nc.request(subjects.opsRequest(host, 'exec', 'monitor'), '{}', { timeout: 5000 }),
    ).rejects.toThrow(/permission/i);
  });
});

describe('kubectl edge (plugin)', () => {
  it('runs logs and exec through real kubectl', async () => {
    const bin = tempDir('edgeplane-plugin-');
    fs.chmodSync(PLUGIN, 0o755);
    fs.symlinkSync(PLUGIN, path.join(bin, 'kubectl-edge'));
    const env = {
      PATH: `${bin}:${process.env.PATH}`,
      KUBECONFIG: kube.kubeconfigPath,
      EDGE_NATS_URL: nats.url,
      EDGE_NATS_CREDS: creds.alice!,
    };
    const list = await run('kubectl', ['plugin', 'list'], env);
    expect(list.stdout).toContain(path.join(bin, 'kubectl-edge'));
    const logs = await run('kubectl', ['edge', 'logs', instance, '-c', 'side'], env);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toBe('side ready\n');
    const exec = await run('kubectl', ['edge', 'exec', instance, '--', 'sh', '-c', 'echo hi; exit 3'], env);
    expect(exec.stdout).toBe('hi\n');
    expect(exec.code).toBe(3);
    const help = await run('kubectl', ['edge', '--help'], env);
    expect(help.stdout).toContain('Usage: kubectl edge');
  });
});

describe('services API', () => {
  it('every service reports the package version ($SRV.INFO, what `nats micro ls` shows)', async () => {
    const nc = await connectNats({
      servers: [nats.url],
      name: 'test',
      reconnectForever: false,
      creds: creds.monitor!,
    });
    cleanup(() => nc.close());
    const client = new Svcm(nc as never).client();
    const infos = [];
    for await (const i of await client.info()) infos.push(i);
    expect(infos.map((i) => i.name).sort()).toEqual(['edge-agent', 'edge-coordinator']);
    for (const i of infos) expect(i.version).toBe(VERSION);
    const agentInfo = infos.find((i) => i.name === 'edge-agent')!;
    expect(agentInfo.endpoints.map((e) => e.name).sort()).toEqual(['exec', 'logs', 'next', 'status']);
  });
});

describe('kubectl get hosts', () => {
  it('prints capacity as Kubernetes quantities, like kubectl get nodes; the numbers stay beside them', async () => {
    const wide = await kubectl(kube.kubeconfigPath, ['get', 'hosts', host, '-o', 'wide']);
    expect(wide.code, wide.stderr).toBe(0);
    const [header, row] = lines(wide.stdout).map((l) => l.trim().split(/\s{2,}/));
    const col = (name: string) => row![header!.indexOf(name)];
    expect(col('CPU')).toBe('8');
    expect(col('MEMORY')).toBe('16Gi');
    expect(col('DISK')).toMatch(/^\d+(Ki|Mi|Gi|Ti)?$/);
    const json = JSON.parse(
      (await kubectl(kube.kubeconfigPath, ['get', 'host', host, '-o', 'jsonpath={.status.allocatable}']))
        .stdout,
    );
    expect(json).toMatchObject({ cpuMillis: 8000, memoryBytes: 16 * 2 ** 30, cpu: '8', memory: '16Gi' });
  });
});

describe('a host whose agent is gone', () => {
  it('is a clear error within the timeout', async () => {
    await agent.kill();
    const r = await edgectl('alice', ['logs', instance, '--tail', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`host ${host} does not answer: its agent is not connected to NATS`);
    expect(r.ms).toBeLessThan(10_000);
  });
});
