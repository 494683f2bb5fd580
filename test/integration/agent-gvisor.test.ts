/**
 * The gVisor driver on the real dockerd + runsc: every field of the instance template it honours, and the
 * errors for what it cannot run, with nothing half-created left behind.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { describe, expect, it } from 'vitest';
import { Docker } from '../../agent/drivers/docker.js';
import type { InstanceRequest } from '../../agent/drivers/driver.js';
import { GvisorDriver } from '../../agent/drivers/gvisor.js';
import { claimVolumeName, defaultSecretRoot } from '../../agent/drivers/volumes.js';
import { BUSYBOX_IMAGE, docker, ensureImage, HTTPD_CMD } from '../../deploy/stack/index.js';
import { httpGet, sleep } from '../../deploy/stack/proc.js';
import type { InstanceTemplateSpec } from '../../shared/api/template.js';
import { createLogger } from '../../shared/log.js';
import { cleanup, tempDir, useDocker, waitFor } from '../harness/index.js';

const dockerFixture = useDocker();
const host = `agent-gv-${crypto.randomBytes(4).toString('hex')}`;
const log = createLogger({ name: 'test', level: 'warn' });
const MiB = 1024 * 1024;

cleanup(async () => {
  const ps = await docker(['ps', '-aq', '--filter', `label=edgeplane.dev/host=${host}`]);
  const ids = ps.stdout.split('\n').filter(Boolean);
  if (ids.length) await docker(['rm', '-f', '-v', ...ids]);
  const vols = await docker(['volume', 'ls', '-q', '--filter', `label=edgeplane.dev/host=${host}`]);
  const names = vols.stdout.split('\n').filter(Boolean);
  if (names.length) await docker(['volume', 'rm', '-f', ...names]);
  const secretRoot = defaultSecretRoot(host);
  if (secretRoot) fs.rmSync(secretRoot, { recursive: true, force: true });
});

function driver(stateDir = tempDir('edgeplane-agent-state-')): GvisorDriver {
  dockerFixture();
  return new GvisorDriver({
    host,
    publishAddress: '127.0.0.1',
    stateDir,
    log,
  });
}

let seq = 0;
function request(template: InstanceTemplateSpec, extra: Partial<InstanceRequest> = {}): InstanceRequest {
  seq++;
  return {
    namespace: 'ns1',
    name: `inst-${seq}`,
    workload: 'wl',
    templateHash: `h${seq}`,
    template,
    limits: { cpuMillis: 500, memoryBytes: 256 * MiB },
    labels: { app: 'test' },
    ...extra,
  };
}

async function containerIds(name?: string): Promise<string[]> {
  const filters = ['--filter', `label=edgeplane.dev/host=${host}`];
  if (name) filters.push('--filter', `label=edgeplane.dev/instance=${name}`);
  const r = await docker(['ps', '-aq', ...filters]);
  return r.stdout.split('\n').filter(Boolean);
}

async function inspect(id: string, format: string): Promise<string> {
  return (await docker(['inspect', '--format', format, id])).stdout.trim();
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('gVisor driver', () => {
  it('checks the runtime by running a program in a real sandbox', async () => {
    const d = driver();
    const ok = await d.checkRuntime();
    expect(ok).toMatchObject({ ok: true });
    expect(ok.detail).toMatch(/a runsc sandbox ran in \d+ ms/);
    // Only this host's sandbox: other agents on the machine may be checking right now.
    const r = await docker(['ps', '-aq', '--filter', `label=edgeplane.dev/probe-host=${host}`]);
    expect(r.stdout.trim()).toBe('');
    const missing = new GvisorDriver({ host, stateDir: tempDir(), runtimeName: 'no-such-runtime', log });
    expect(await missing.checkRuntime()).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/has no runtime no-such-runtime/),
    });
  });

  it('runs the sidecar example: containers share the network and an emptyDir, ports published on 127.0.0.1', async () => {
    const d = driver();
    const req = request({
      containers: [
        {
          name: 'app',
          image: BUSYBOX_IMAGE,
          command: ['/bin/httpd', '-f', '-p', '8080', '-h', '/shared'],
          ports: [{ name: 'http', containerPort: 8080 }],
          volumeMounts: [{ name: 'logs', mountPath: '/shared' }],
        },
        {
          name: 'log-collector',
          image: BUSYBOX_IMAGE,
          command: ['/bin/sh', '-c'],
          args: ['echo from-sidecar > /var/log/index.html && exec /bin/httpd -f -p 9090 -h /var/log'],
          ports: [{ containerPort: 9090 }],
          volumeMounts: [{ name: 'logs', mountPath: '/var/log' }],
        },
      ],
      volumes: [{ name: 'logs', emptyDir: {} }],
    });
    const state = await d.start(req);
    expect(state.containers.map((c) => c.name)).toEqual(['app', 'log-collector']);
    expect(state.runtime).toBe('runsc');
    const app = state.ports.find((p) => p.containerPort === 8080);
    const side = state.ports.find((p) => p.containerPort === 9090);
    expect(app).toMatchObject({ name: 'http', hostIP: '127.0.0.1' });
    expect(side?.hostIP).toBe('127.0.0.1');
    // The app serves what the sidecar wrote into the shared emptyDir.
    const body = await waitFor(
      'app serving the sidecar file',
      async () => {
        const r = await httpGet(`http://127.0.0.1:${app!.hostPort}/index.html`).catch(() => undefined);
        return r?.status === 200 ? r.body : undefined;
      },
      { timeoutMs: 20_000 },
    );
    expect(body.trim()).toBe('from-sidecar');
    // The sidecar listens in the same network namespace: its port is published through the first container.
    const viaSidecar = await waitFor(
      'sidecar port',
      async () => {
        const r = await httpGet(`http://127.0.0.1:${side!.hostPort}/index.html`).catch(() => undefined);
        return r?.status === 200 ? r.body : undefined;
      },
      { timeoutMs: 20_000 },
    );
    expect(viaSidecar.trim()).toBe('from-sidecar');
    for (const id of await containerIds(req.name))
      expect(await inspect(id, '{{.HostConfig.Runtime}}')).toBe('runsc');

    await d.stop(req.namespace, req.name, 1);
    await d.destroy(req.namespace, req.name);
    expect(await containerIds(req.name)).toEqual([]);
    expect(await d.inspect(req.namespace, req.name)).toBeUndefined();
  });

  it('honours command, args, env with valueFrom, configMap and secret files, readOnly, and limits', async () => {
    const stateDir = tempDir('edgeplane-agent-state-');
    const d = driver(stateDir);
    const req = request(
      {
        image: BUSYBOX_IMAGE,
        command: ['/bin/sh', '-c'],
        args: ['echo started > /tmp/started; exec sleep 3600'],
        env: [
          { name: 'LITERAL', value: 'plain' },
          { name: 'DB_URL', valueFrom: { secretKeyRef: { name: 'db', key: 'url' } } },
          { name: 'MODE', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'mode' } } },
          { name: 'OPTIONAL', valueFrom: { secretKeyRef: { name: 'nope', key: 'x', optional: true } } },
        ],
        volumes: [
          { name: 'config', configMap: { name: 'cfg' } },
          { name: 'secrets', secret: { secretName: 'db', defaultMode: 0o400 } },
          { name: 'scratch', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
        ],
        volumeMounts: [
          { name: 'config', mountPath: '/etc/app/config', readOnly: true },
          { name: 'secrets', mountPath: '/etc/app/secrets' },
          { name: 'scratch', mountPath: '/scratch' },
        ],
      },
      {
        limits: { cpuMillis: 250, memoryBytes: 64 * MiB },
        values: {
          env: { main: { DB_URL: 'postgres://db/app', MODE: 'fast' } },
          files: {
            config: { 'app.conf': b64('mode=fast\n'), 'nested/extra.txt': b64('extra') },
            secrets: { url: b64('postgres://db/app') },
          },
          registryAuth: [],
        },
      },
    );
    const state = await d.start(req);
    expect(state.phase).toBe('Running');
    const run = (cmd: string) => d.exec(req.namespace, req.name, 'main', ['/bin/sh', '-c', cmd], 10_000);
    expect((await run('cat /tmp/started')).output.trim()).toBe('started');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell default-value expansion
    expect((await run('echo "$LITERAL|$DB_URL|$MODE|${OPTIONAL-unset}"')).output.trim()).toBe(
      'plain|postgres://db/app|fast|unset',
    );
    expect((await run('cat /etc/app/config/app.conf /etc/app/config/nested/extra.txt')).output).toBe(
      'mode=fast\nextra',
    );
    expect((await run('cat /etc/app/secrets/url')).output).toBe('postgres://db/app');
    // configMap and secret volumes are read-only whatever the mount says; an emptyDir is writable.
    expect((await run('touch /etc/app/config/x')).exitCode).not.toBe(0);
    expect((await run('touch /etc/app/secrets/x')).exitCode).not.toBe(0);
    expect((await run('echo hi > /scratch/f && cat /scratch/f')).output.trim()).toBe('hi');
    const [id] = await containerIds(req.name);
    expect(await inspect(id!, '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}')).toBe(
      `${64 * MiB} 250000000`,
    );
    // Secret files live on a tmpfs, never in the state directory on disk.
    const secretRoot = defaultSecretRoot(host);
    expect(secretRoot).toBeDefined();
    expect(fs.statfsSync(secretRoot!).type).toBe(0x01021994);
    const onDisk = (dir: string): string[] =>
      fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
        const p = path.join(dir, e.name);
        return e.isDirectory() ? onDisk(p) : [fs.readFileSync(p, 'utf8')];
      });
    expect(onDisk(stateDir).some((c) => c.includes('postgres://db/app'))).toBe(false);
    expect(onDisk(secretRoot!).some((c) => c.includes('postgres://db/app'))).toBe(true);
    await d.destroy(req.namespace, req.name);
    expect(onDisk(secretRoot!).some((c) => c.includes('postgres://db/app'))).toBe(false);
    const vols = await docker(['volume', 'ls', '-q', '--filter', `label=edgeplane.dev/instance=${req.name}`]);
    expect(vols.stdout.trim()).toBe('');
  });

  it('splits instance limits over containers that set none and honours container limits', async () => {
    const d = driver();
    const req = request(
      {
        containers: [
          {
            name: 'a',
            image: BUSYBOX_IMAGE,
            command: ['sleep', '3600'],
            resources: { limits: { cpu: '100m', memory: '32Mi' } },
          },
          { name: 'b', image: BUSYBOX_IMAGE, command: ['sleep', '3600'] },
          { name: 'c', image: BUSYBOX_IMAGE, command: ['sleep', '3600'] },
        ],
      },
      { limits: { cpuMillis: 500, memoryBytes: 96 * MiB } },
    );
    await d.start(req);
    const got: Record<string, string> = {};
    for (const id of await containerIds(req.name)) {
      got[await inspect(id, '{{index .Config.Labels "edgeplane.dev/container"}}')] = await inspect(
        id,
        '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}',
      );
    }
    expect(got).toEqual({
      a: `${32 * MiB} 100000000`,
      b: `${32 * MiB} 200000000`,
      c: `${32 * MiB} 200000000`,
    });
    await d.destroy(req.namespace, req.name);
  });

  it('keeps a persistentVolumeClaim across replacement on the same host, and mounts it read-only when asked', async () => {
    const d = driver();
    const claim = `data-${crypto.randomBytes(3).toString('hex')}`;
    cleanup(() => docker(['volume', 'rm', '-f', claimVolumeName('ns1', claim)]));
    const template = (readOnly: boolean): InstanceTemplateSpec => ({
      image: BUSYBOX_IMAGE,
      command: ['sleep', '3600'],
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName: claim } }],
      volumeMounts: [{ name: 'data', mountPath: '/var/lib/app', readOnly }],
    });
    const first = request(template(false));
    await d.start(first);
    const w = await d.exec(
      first.namespace,
      first.name,
      'main',
      ['/bin/sh', '-c', 'echo kept > /var/lib/app/state'],
      10_000,
    );
    expect(w.exitCode).toBe(0);
    await d.stop(first.namespace, first.name, 1);
    await d.destroy(first.namespace, first.name);
    // A replacement (another template hash, same name) and a read-only user see the data.
    const second = { ...request(template(true)), name: first.name };
    await d.start(second);
    const r = await d.exec(
      second.namespace,
      second.name,
      'main',
      ['/bin/sh', '-c', 'cat /var/lib/app/state; touch /var/lib/app/x'],
      10_000,
    );
    expect(r.output).toContain('kept');
    expect(r.exitCode).not.toBe(0);
    await d.destroy(second.namespace, second.name);
    expect((await docker(['volume', 'inspect', claimVolumeName('ns1', claim)])).code).toBe(0);
  });

  it('reports a crashing container with its exit code and restarts, Docker backing off between restarts', async () => {
    const d = driver();
    const req = request({ image: BUSYBOX_IMAGE, command: ['/bin/sh', '-c', 'exit 3'] });
    await d.start(req);
    const state = await waitFor(
      'restarts',
      async () => {
        const s = await d.inspect(req.namespace, req.name);
        return s && (s.containers[0]?.restartCount ?? 0) >= 2 ? s : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(state.phase).not.toBe('Running');
    expect(state.containers[0]).toMatchObject({ exitCode: 3 });
    expect(state.message).toMatch(/container main .*exit code 3/);
    await d.destroy(req.namespace, req.name);
  });

  it('lists an instance removed between the listing and its inspect as gone, not the runtime as unobservable', async () => {
    dockerFixture();
    const real = new Docker();
    // dockerd's listing taken while both instances ran; one is removed before its containers are inspected.
    let listing: Dockerode.ContainerInfo[] | undefined;
    const docker = Object.create(real) as Dockerode;
    docker.listContainers = ((opts: Dockerode.ContainerListOptions) =>
      listing ? Promise.resolve(listing) : real.listContainers(opts)) as Dockerode['listContainers'];
    const d = new GvisorDriver({
      host,
      docker,
      publishAddress: '127.0.0.1',
      stateDir: tempDir('ep-st-'),
      log,
    });
    const [kept, gone] = [
      request({ image: BUSYBOX_IMAGE, command: ['sleep', '600'] }),
      request({ image: BUSYBOX_IMAGE, command: ['sleep', '600'] }),
    ];
    await d.start(kept!);
    await d.start(gone!);
    const taken = await real.listContainers({
      all: true,
      filters: { label: [`edgeplane.dev/host=${host}`] },
    });
    expect(taken.map((c) => c.Labels['edgeplane.dev/instance'])).toEqual(
      expect.arrayContaining([kept!.name, gone!.name]),
    );
    await d.destroy(gone!.namespace, gone!.name);
    listing = taken;
    const states = await d.list();
    expect(states.map((s) => s.name)).toContain(kept!.name);
    expect(states.map((s) => s.name)).not.toContain(gone!.name);
    listing = taken.filter((c) => c.Labels['edgeplane.dev/instance'] === gone!.name);
    expect(await d.inspect(gone!.namespace, gone!.name)).toBeUndefined();
    listing = undefined;
    await d.destroy(kept!.namespace, kept!.name);
  });

  it('rejects what it cannot run with an error naming the field and leaves nothing behind', async () => {
    const d = driver();
    const cases: Array<[InstanceRequest, RegExp]> = [
      [
        request({
          image: BUSYBOX_IMAGE,
          env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }],
        }),
        /template\.spec\.env\[0\] \(X\): the value of Secret s key k was not delivered/,
      ],
      [
        request({
          containers: [
            { name: 'ok', image: BUSYBOX_IMAGE, command: ['sleep', '60'] },
            { name: 'bad', image: BUSYBOX_IMAGE, volumeMounts: [{ name: 'missing', mountPath: '/m' }] },
          ],
        }),
        /containers\[1\]\.volumeMounts: volume "missing" is not in template\.spec\.volumes/,
      ],
      [
        request({ image: BUSYBOX_IMAGE, volumes: [{ name: 'c', configMap: { name: 'cfg' } }] }),
        /volumes\[0\] \(c\): the files of ConfigMap cfg were not delivered/,
      ],
      [
        request({ image: BUSYBOX_IMAGE }, { limits: { cpuMillis: 100, memoryBytes: MiB } }),
        /limits\.memory: .* below the 6Mi/,
      ],
      [
        request({ containers: [{ name: 'vm', image: 'projects/debian-cloud/global/images/debian-11' }] }),
        /containers\[0\]\.image: .* is a VM image/,
      ],
      [
        // Attachments need the host's network, which this driver has not got (no --overlay-address).
        request(
          { image: BUSYBOX_IMAGE, networkInterfaces: [{ networkRef: { name: 'n' }, ipAddress: '10.0.0.5' }] },
          {
            interfaces: [
              {
                network: 'n',
                segment: 1,
                name: 'net0',
                mac: '02:00:00:00:00:01',
                address: '10.0.0.5/24',
                mtu: 1450,
                primary: true,
              },
            ],
          },
        ),
        /interfaces: this host carries no Network attachments/,
      ],
      [
        request({ image: BUSYBOX_IMAGE, volumes: [{ name: 'scratch', emptyDir: { sizeLimit: '1Gi' } }] }),
        /volumes\[0\] \(scratch\): emptyDir\.sizeLimit needs medium: Memory/,
      ],
    ];
    for (const [req, message] of cases) {
      await expect(d.start(req)).rejects.toThrow(message);
      expect(await containerIds(req.name)).toEqual([]);
    }
  });
});

describe('gVisor driver image pulls', () => {
  /** A registry stand-in on 127.0.0.1 that asks for Basic auth and records what dockerd sends. */
  async function fakeRegistry() {
    const seen: Array<{ url: string; authorization?: string }> = [];
    const server = http.createServer((req, res) => {
      seen.push({
        url: req.url ?? '',
        ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      });
      if (!req.headers.authorization) {
        res.writeHead(401, {
          'WWW-Authenticate': 'Basic realm="test"',
          'Docker-Distribution-API-Version': 'registry/2.0',
        });
        res.end();
        return;
      }
      res.writeHead(404, {
        'Content-Type': 'application/json',
        'Docker-Distribution-API-Version': 'registry/2.0',
      });
      res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup(() => new Promise<void>((r) => server.close(() => r())));
    return { seen, port: (server.address() as AddressInfo).port };
  }

  it('pulls a missing image with the imagePullSecrets credentials, and never pulls an image that is present', async () => {
    const d = driver();
    const reg = await fakeRegistry();
    const registry = `127.0.0.1:${reg.port}`;
    const values = {
      env: {},
      files: {},
      registryAuth: [{ server: registry, username: 'robot', password: 's3cret' }],
    };
    const missing = request(
      { image: `${registry}/private/app:v1`, imagePullSecrets: [{ name: 'regcred' }] },
      { values },
    );
    await expect(d.start(missing)).rejects.toThrow(
      /template\.spec\.image: image 127\.0\.0\.1:\d+\/private\/app:v1 is not on this host and pulling it failed/,
    );
    const expected = `Basic ${Buffer.from('robot:s3cret').toString('base64')}`;
    expect(reg.seen.some((r) => r.authorization === expected)).toBe(true);
    expect(await containerIds(missing.name)).toEqual([]);

    // Present locally (tagged with the registry's name): no request reaches the registry.
    const present = `${registry}/private/present:v1`;
    await ensureImage(present, { cmd: HTTPD_CMD });
    cleanup(() => docker(['rmi', present]));
    reg.seen.length = 0;
    const req = request({ image: present, imagePullSecrets: [{ name: 'regcred' }] }, { values });
    const state = await d.start(req);
    expect(state.containers).toHaveLength(1);
    await sleep(200);
    expect(reg.seen).toEqual([]);
    await d.destroy(req.namespace, req.name);
  });
});
