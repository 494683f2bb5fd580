/**
 * The agent's reconciler over the real gVisor driver (dockerd + runsc): readiness and liveness probes (exec, HTTP,
 * TCP) gating `ready`, and bad intents failing their own instance with a clear message while the rest run.
 */
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Docker } from '../../agent/drivers/docker.js';
import type { Driver } from '../../agent/drivers/driver.js';
import { GvisorDriver } from '../../agent/drivers/gvisor.js';
import type { HostIntent } from '../../agent/intents.js';
import { Reconciler } from '../../agent/reconciler.js';
import { BUSYBOX_IMAGE, docker, ensureImage, HTTPD_CMD } from '../../deploy/stack/index.js';
import type { ResourceAmounts } from '../../shared/api/index.js';
import type { InstanceTemplateSpec } from '../../shared/api/template.js';
import { createLogger } from '../../shared/log.js';
import { cleanup, tempDir, useDocker, waitFor } from '../harness/index.js';
import { testIntent } from '../harness/objects.js';

const dockerFixture = useDocker();
const host = `agent-rc-${crypto.randomBytes(4).toString('hex')}`;
const log = createLogger({ name: 'test', level: 'warn' });
const HTTPD_IMAGE = 'edgeplane-test/agent-httpd:latest';

cleanup(async () => {
  const ps = await docker(['ps', '-aq', '--filter', `label=edgeplane.dev/host=${host}`]);
  const ids = ps.stdout.split('\n').filter(Boolean);
  if (ids.length) await docker(['rm', '-f', '-v', ...ids]);
});

/** The intent of `workload`: one instance, on this file's host. */
const intent = (workload: string, template: InstanceTemplateSpec, limits?: ResourceAmounts): HostIntent =>
  testIntent({ workload, template, hosts: [host], ...(limits ? { limits } : {}) });

function reconciler(intents: HostIntent[]): { r: Reconciler; driver: Driver } {
  dockerFixture();
  const driver = new GvisorDriver({
    host,
    publishAddress: '127.0.0.1',
    stateDir: tempDir('edgeplane-agent-state-'),
    log,
  });
  const r = new Reconciler({
    host,
    drivers: { gvisor: driver },
    intents: () => intents,
    synced: () => true,
    resyncMs: 500,
    log,
  });
  r.start();
  cleanup(async () => {
    await r.stop();
    intents.length = 0;
    await r.pass();
    await r.stop();
  });
  return { r, driver };
}

const stateOf = (r: Reconciler, workload: string) => r.observed().find((s) => s.workload === workload);

/** Ids of the containers (running or not) of one instance of this file's host. */
const containerIdsOf = async (instance: string) =>
  (
    await docker([
      'ps',
      '-aq',
      '--filter',
      `label=edgeplane.dev/host=${host}`,
      '--filter',
      `label=edgeplane.dev/instance=${instance}`,
    ])
  ).stdout
    .split('\n')
    .filter(Boolean);

describe('agent reconciler', () => {
  it('gates readiness on exec and HTTP readiness probes, and restarts a container whose TCP liveness probe fails', async () => {
    await ensureImage(HTTPD_IMAGE, { cmd: HTTPD_CMD });
    const intents = [
      intent('http', {
        image: HTTPD_IMAGE,
        ports: [{ name: 'web', containerPort: 80 }],
        readinessProbe: {
          httpGet: { port: 'web', path: '/ready.html' },
          periodSeconds: 1,
          failureThreshold: 1,
        },
      }),
      intent('exec', {
        image: BUSYBOX_IMAGE,
        command: ['sleep', '3600'],
        readinessProbe: { exec: { command: ['test', '-f', '/tmp/ok'] }, periodSeconds: 1 },
      }),
      intent('live', {
        image: BUSYBOX_IMAGE,
        command: ['sleep', '3600'],
        livenessProbe: { tcpSocket: { port: 81 }, periodSeconds: 1, failureThreshold: 2 },
      }),
    ];
    const { r, driver } = reconciler(intents);
    await waitFor(
      'instances running',
      () => ['http', 'exec', 'live'].every((w) => stateOf(r, w)?.phase === 'Running'),
      {
        timeoutMs: 30_000,
      },
    );
    // Running but not ready: the probes have not passed.
    await new Promise((res) => setTimeout(res, 2500));
    expect(stateOf(r, 'http')).toMatchObject({ phase: 'Running', ready: false });
    expect(stateOf(r, 'http')?.containers[0]?.message).toMatch(/readiness probe: HTTP GET returned 404/);
    expect(stateOf(r, 'exec')).toMatchObject({ phase: 'Running', ready: false });

    await driver.exec!('ns', 'http-loc-0', 'main', ['/bin/sh', '-c', 'echo ok > /var/www/ready.html'], 5000);
    await driver.exec!('ns', 'exec-loc-0', 'main', ['touch', '/tmp/ok'], 5000);
    await waitFor('readiness probes pass', () => stateOf(r, 'http')?.ready && stateOf(r, 'exec')?.ready, {
      timeoutMs: 15_000,
    });
    // Liveness: nothing listens on 81, so the container is restarted.
    const live = await waitFor(
      'liveness restart',
      async () => {
        const s = await driver.inspect('ns', 'live-loc-0');
        return s && (s.containers[0]?.restartCount ?? 0) >= 1 ? s : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(live.containers[0]?.restartCount).toBeGreaterThanOrEqual(1);
    // Readiness failing again takes ready away.
    await driver.exec!('ns', 'exec-loc-0', 'main', ['rm', '/tmp/ok'], 5000);
    await waitFor('exec readiness fails again', () => stateOf(r, 'exec')?.ready === false, {
      timeoutMs: 15_000,
    });
  });

  it('fails bad intents on their own instance with a clear message and keeps serving the rest', async () => {
    const intents = [
      intent('good', { image: BUSYBOX_IMAGE, command: ['sleep', '3600'] }),
      intent('kind', { image: 'projects/debian-cloud/images/debian-11' }),
      intent(
        'tiny',
        { image: BUSYBOX_IMAGE, command: ['sleep', '3600'] },
        { cpuMillis: 100, memoryBytes: 1024 },
      ),
      intent('nosecret', {
        image: BUSYBOX_IMAGE,
        env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'api', key: 'token' } } }],
      }),
    ];
    const { r } = reconciler(intents);
    await waitFor(
      'good running, bad failed',
      () =>
        stateOf(r, 'good')?.phase === 'Running' &&
        ['kind', 'tiny', 'nosecret'].every((w) => stateOf(r, w)?.phase === 'Failed'),
      { timeoutMs: 30_000 },
    );
    expect(stateOf(r, 'kind')?.message).toMatch(
      /template\.spec\.image: unknown image kind "projects\/debian-cloud\/images\/debian-11"/,
    );
    expect(stateOf(r, 'tiny')?.message).toMatch(/limits\.memory: 1024 bytes is below the 6Mi/);
    expect(stateOf(r, 'nosecret')?.message).toMatch(
      /env\[0\] \(TOKEN\): the value of Secret api key token was not delivered.*retrying in/,
    );
    const ps = await docker(['ps', '-aq', '--filter', `label=edgeplane.dev/host=${host}`]);
    expect(ps.stdout.split('\n').filter(Boolean)).toHaveLength(1);
  });

  it('leaves instances of a runtime it cannot observe alone and says why', async () => {
    dockerFixture();
    const intents = [intent('blind', { image: BUSYBOX_IMAGE, command: ['sleep', '3600'] })];
    const broken = new GvisorDriver({
      host,
      docker: new Docker({ socketPath: '/nonexistent/docker.sock' }),
      stateDir: tempDir('edgeplane-agent-state-'),
      log,
    });
    const r = new Reconciler({
      host,
      drivers: { gvisor: broken },
      intents: () => intents,
      synced: () => true,
      log,
    });
    await r.pass();
    expect(stateOf(r, 'blind')).toMatchObject({ phase: 'Unknown', ready: false });
    expect(stateOf(r, 'blind')?.message).toMatch(/the gvisor runtime cannot be observed: .*nonexistent/);
    await r.stop();
  });

  it('never judges an instance by a listing taken before its start ended (a slow listing under load)', async () => {
    dockerFixture();
    const intents = [intent('slowlist', { image: BUSYBOX_IMAGE, command: ['sleep', '3600'] })];
    const real = new GvisorDriver({ host, stateDir: tempDir('edgeplane-agent-state-'), log });
    // A host so loaded that a listing returns only after a start that began meanwhile has ended: the start waits
    // for a listing to have been taken, and that listing is returned once the start is done.
    let starts = 0;
    let listed: (() => void) | undefined;
    let starting: Promise<unknown> | undefined;
    const d = Object.create(real) as GvisorDriver;
    d.start = async (req) => {
      starts++;
      await new Promise<void>((res) => {
        listed = res;
      });
      starting = real.start(req);
      return (await starting) as Awaited<ReturnType<GvisorDriver['start']>>;
    };
    d.list = async () => {
      const states = await real.list();
      listed?.();
      listed = undefined;
      await new Promise((res) => setTimeout(res, 20));
      const s = starting;
      if (s) {
        starting = undefined;
        await s.catch(() => undefined);
        await new Promise((res) => setTimeout(res, 50));
      }
      return states;
    };
    const r = new Reconciler({
      host,
      drivers: { gvisor: d },
      intents: () => intents,
      synced: () => true,
      resyncMs: 300,
      log,
    });
    r.start();
    cleanup(async () => {
      await r.stop();
      intents.length = 0;
      await r.pass();
    });
    await waitFor('running', () => stateOf(r, 'slowlist')?.phase === 'Running', { timeoutMs: 60_000 });
    const [id] = await containerIdsOf('slowlist-loc-0');
    // Several more passes, each listing slowly.
    await new Promise((res) => setTimeout(res, 3000));
    expect(starts).toBe(1);
    expect(await containerIdsOf('slowlist-loc-0')).toEqual([id]);
    expect(stateOf(r, 'slowlist')).toMatchObject({ phase: 'Running', ready: true });
  });

  it('runs each instance on the template revision its intent names, and replaces only the ones that switch', async () => {
    const template = (version: string): InstanceTemplateSpec => ({
      image: BUSYBOX_IMAGE,
      command: ['sleep', '3600'],
      env: [
        { name: 'VERSION', value: version },
        { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'token', key: 'value' } } },
      ],
    });
    const v1 = intent('roll', template('1'));
    v1.instances = [0, 1].map((i) => ({ name: `roll-loc-${i}`, host, ordinal: i, labels: {} }));
    v1.values = { env: { main: { TOKEN: 'secret-1' } }, files: {}, registryAuth: [] };
    const intents = [v1];
    const { r } = reconciler(intents);
    const running = () =>
      ['roll-loc-0', 'roll-loc-1'].every(
        (n) => r.observed().find((s) => s.name === n && s.phase === 'Running') !== undefined,
      );
    await waitFor('v1 running', running, { timeoutMs: 30_000 });
    const id = (n: string) => r.observed().find((s) => s.name === n)!.providerID;
    const envOf = async (n: string) =>
      JSON.parse(
        (await docker(['inspect', '--format', '{{json .Config.Env}}', id(n)!.replace('docker://', '')]))
          .stdout,
      ) as string[];
    const before = { 0: id('roll-loc-0'), 1: id('roll-loc-1') };

    // The update reaches roll-loc-1 only: roll-loc-0 stays on v1 (named as a revision, with its own values).
    const v2 = intent('roll', template('2'));
    v2.instances = [
      { name: 'roll-loc-0', host, ordinal: 0, labels: {}, templateHash: v1.templateHash },
      { name: 'roll-loc-1', host, ordinal: 1, labels: {} },
    ];
    v2.revisions = [{ templateHash: v1.templateHash, template: v1.template, limits: v1.limits }];
    v2.values = {
      env: { main: { TOKEN: 'secret-2' } },
      files: {},
      registryAuth: [],
      revisions: { [v1.templateHash]: { env: { main: { TOKEN: 'secret-1' } }, files: {}, registryAuth: [] } },
    };
    intents[0] = v2;
    r.trigger();
    await waitFor('roll-loc-1 replaced', () => id('roll-loc-1') !== before[1] && running(), {
      timeoutMs: 30_000,
    });
    // Several more passes change nothing.
    await new Promise((res) => setTimeout(res, 1500));
    expect(id('roll-loc-0')).toBe(before[0]);
    expect(await envOf('roll-loc-0')).toEqual(expect.arrayContaining(['VERSION=1', 'TOKEN=secret-1']));
    expect(await envOf('roll-loc-1')).toEqual(expect.arrayContaining(['VERSION=2', 'TOKEN=secret-2']));
    expect(r.observed().find((s) => s.name === 'roll-loc-0')?.templateHash).toBe(v1.templateHash);

    // Then roll-loc-0 switches too.
    intents[0] = { ...v2, instances: v2.instances.map(({ templateHash: _, ...i }) => i), revisions: [] };
    r.trigger();
    await waitFor('roll-loc-0 replaced', () => id('roll-loc-0') !== before[0] && running(), {
      timeoutMs: 30_000,
    });
    expect(await envOf('roll-loc-0')).toEqual(expect.arrayContaining(['VERSION=2', 'TOKEN=secret-2']));
  });
});
