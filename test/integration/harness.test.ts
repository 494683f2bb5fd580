/**
 * The real local stack (deploy/stack via test/harness), no mocks: nats-server with JetStream, a three-node
 * cluster, etcd + kube-apiserver with a CRD, a gVisor container serving HTTP, and the QEMU test guest.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { describe, expect, test } from 'vitest';
import {
  docker,
  ensureImage,
  freePort,
  GUEST_READY_MARKER,
  HTTPD_CMD,
  kubectl,
  pidAlive,
  testGuest,
  waitFor,
} from '../../deploy/stack/index.js';
import {
  cleanup,
  startNatsClusterForTest,
  startTestGuestForTest,
  tempDir,
  useDocker,
  useKubeApi,
  useNats,
} from '../harness/index.js';

describe('nats-server (single, JetStream)', () => {
  const nats = useNats({ jetstream: true });

  test('KV put/get, and the store survives a restart on the same port', async () => {
    const nc = await connect({ servers: nats().url });
    cleanup(() => nc.close());
    const kv = await new Kvm(nc).create('harness');
    await kv.put('greeting', 'hello');
    expect((await kv.get('greeting'))?.string()).toBe('hello');
    await nc.close();

    const pid = nats().pid;
    await nats().restart();
    expect(nats().pid).not.toBe(pid);
    expect(pidAlive(pid)).toBe(false);
    const nc2 = await connect({ servers: nats().url });
    cleanup(() => nc2.close());
    const kv2 = await new Kvm(nc2).open('harness');
    expect((await kv2.get('greeting'))?.string()).toBe('hello');
  });
});

describe('nats-server cluster of three', () => {
  test('R3 KV bucket keeps working after a server is killed', async () => {
    const cluster = await startNatsClusterForTest({ size: 3, jetstream: true });
    expect(cluster.urls).toHaveLength(3);
    const nc = await connect({ servers: cluster.urls });
    cleanup(() => nc.close());
    const kv = await new Kvm(nc).create('ha', { replicas: 3 });
    await kv.put('k', 'v1');
    expect((await kv.status()).replicas).toBe(3);

    // Kill the server this client is connected to, so the client must fail over too.
    const victim =
      cluster.servers.find((s) => s.port === Number(nc.getServer().split(':').pop())) ?? cluster.servers[0]!;
    await victim.kill();
    expect(victim.running).toBe(false);
    expect(pidAlive(victim.pid)).toBe(false);

    await waitFor('a write after the kill', async () => (await kv.put('k', 'v2')) > 0, {
      timeoutMs: 30_000,
      intervalMs: 500,
    });
    expect((await kv.get('k'))?.string()).toBe('v2');
    await cluster.waitForMetaLeader(30_000);
  });
});

describe('kube-apiserver + etcd', () => {
  const crdDir = tempDir('edgeplane-crds-');
  fs.writeFileSync(
    path.join(crdDir, 'widgets.yaml'),
    `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.test.edgeplane.io
spec:
  group: test.edgeplane.io
  scope: Namespaced
  names: { kind: Widget, plural: widgets, singular: widget, listKind: WidgetList }
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: { type: integer }
`,
  );
  const kube = useKubeApi({ crdDir });

  test('the CRD is established and an object of it round-trips through kubectl', async () => {
    const kc = kube().kubeconfigPath;
    const crd = await kubectl(kc, ['get', 'crd', 'widgets.test.edgeplane.io', '-o', 'json']);
    expect(crd.code).toBe(0);
    const conditions = JSON.parse(crd.stdout).status.conditions as { type: string; status: string }[];
    expect(conditions).toContainEqual(expect.objectContaining({ type: 'Established', status: 'True' }));

    const applied = await kubectl(kc, ['apply', '-f', '-'], {
      input:
        'apiVersion: test.edgeplane.io/v1\nkind: Widget\nmetadata: { name: w1, namespace: default }\nspec: { size: 3 }\n',
    });
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    const got = await kubectl(kc, ['get', 'widgets', 'w1', '-o', 'json']);
    expect(got.code).toBe(0);
    expect(JSON.parse(got.stdout)).toMatchObject({
      kind: 'Widget',
      metadata: { name: 'w1' },
      spec: { size: 3 },
    });

    // Schema validation is done by the real server.
    const bad = await kubectl(kc, ['apply', '-f', '-'], {
      input:
        'apiVersion: test.edgeplane.io/v1\nkind: Widget\nmetadata: { name: w2 }\nspec: { size: "big" }\n',
    });
    expect(bad.code).not.toBe(0);
  });
});

describe('docker + gVisor (runsc)', () => {
  const dockerFx = useDocker();

  test('an httpd container under runsc serves its page on a published 127.0.0.1 port', async () => {
    const image = 'edgeplane-test/httpd:latest';
    const page = `<h1>edgeplane harness ${Date.now()}</h1>`;
    await ensureImage(image, { cmd: HTTPD_CMD, exposedPorts: [80], files: { '/var/www/index.html': page } });
    const inspect = await docker(['image', 'inspect', '--format', '{{json .Config.Cmd}}', image]);
    expect(JSON.parse(inspect.stdout)).toEqual(HTTPD_CMD);

    const port = await freePort();
    const name = `edgeplane-harness-${port}`;
    const started = await docker([
      'run',
      '-d',
      '--name',
      name,
      ...dockerFx().labelArgs,
      '--runtime=runsc',
      '-p',
      `127.0.0.1:${port}:80`,
      image,
    ]);
    expect(started.stderr).toBe('');
    expect(started.code).toBe(0);
    const runtime = await docker(['inspect', '--format', '{{.HostConfig.Runtime}}', name]);
    expect(runtime.stdout.trim()).toBe('runsc');

    const body = await waitFor(
      `http://127.0.0.1:${port}/`,
      async () => {
        const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
        return r.ok ? r.text() : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(body).toBe(page);

    expect((await docker(['rm', '-f', name])).code).toBe(0);
    const left = await docker(['ps', '-aq', '--filter', `label=${dockerFx().label}`]);
    expect(left.stdout.trim()).toBe('');
  });
});

describe('qemu test guest', () => {
  test('boots to the ready marker and powers off via QMP', async () => {
    const guest = await testGuest();
    expect(fs.existsSync(guest.kernelPath)).toBe(true);
    expect(fs.existsSync(guest.initrdPath)).toBe(true);
    expect(['kvm', 'tcg']).toContain(guest.accel);

    const vm = await startTestGuestForTest({ accel: guest.accel });
    await vm.waitForConsole(GUEST_READY_MARKER, 90_000);
    const status = (await vm.qmp('query-status')) as { status: string };
    expect(status.status).toBe('running');

    // The guest honours the ACPI power button (system_powerdown) and powers itself off.
    const how = await vm.powerdown(30_000);
    expect(how).toBe('powerdown');
    expect(vm.console()).toContain('EDGEPLANE-GUEST-POWERDOWN');
    expect(vm.exited).toBe(true);
    expect(pidAlive(vm.pid)).toBe(false);
    const left = spawnSync('pgrep', ['-f', vm.qmpSocket], { encoding: 'utf8' }).stdout.trim();
    expect(left).toBe('');
  });
});
