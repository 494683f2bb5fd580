/** The agent's pure parts: template helpers, malformed-intent salvage, the catalog schema, config precedence. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { loadAgentConfig } from '../../agent/config.js';
import { exitZeroElf, singleFileTar } from '../../agent/drivers/sandbox-launch.js';
import { containerLimits, registryOf, resolveEnv } from '../../agent/drivers/template.js';
import { readCapacity } from '../../agent/host/capacity.js';
import { HostMonitor, kubeArch } from '../../agent/host/monitor.js';
import { CatalogImage } from '../../agent/images/catalog.js';
import { salvageIntent } from '../../agent/malformed.js';
import { createLogger } from '../../shared/log.js';
import { decode, encode, HostReport } from '../../shared/nats/messages.js';

const MiB = 1024 * 1024;

describe('containerLimits', () => {
  it('gives the single-image form the instance limits', () => {
    expect(containerLimits({ image: 'a' }, { cpuMillis: 500, memoryBytes: 64 * MiB })).toEqual([
      { cpuMillis: 500, memoryBytes: 64 * MiB },
    ]);
  });

  it('honours container limits (or requests) and shares the rest equally', () => {
    const t = {
      containers: [
        { name: 'a', image: 'x', resources: { limits: { cpu: '100m', memory: '32Mi' } } },
        { name: 'b', image: 'x', resources: { requests: { cpu: '200m' } } },
        { name: 'c', image: 'x' },
      ],
    };
    expect(containerLimits(t, { cpuMillis: 1000, memoryBytes: 96 * MiB })).toEqual([
      { cpuMillis: 100, memoryBytes: 32 * MiB },
      { cpuMillis: 200, memoryBytes: 32 * MiB },
      { cpuMillis: 700, memoryBytes: 32 * MiB },
    ]);
  });

  it('rejects limits no container can run with, naming the field', () => {
    expect(() => containerLimits({ image: 'a' }, { cpuMillis: 100, memoryBytes: MiB })).toThrow(
      'template.spec.resources.limits.memory: 1048576 bytes is below the 6Mi a container needs',
    );
    expect(() => containerLimits({ image: 'a' }, { cpuMillis: 0, memoryBytes: 64 * MiB })).toThrow(
      /limits\.cpu/,
    );
    expect(() =>
      containerLimits(
        { containers: [{ name: 'a', image: 'x', resources: { limits: { memory: 'lots' } } }] },
        {
          cpuMillis: 100,
          memoryBytes: 64 * MiB,
        },
      ),
    ).toThrow(/template\.spec\.containers\[0\]\.resources/);
  });
});

describe('resolveEnv', () => {
  const c = {
    name: 'main',
    image: 'x',
    env: [
      { name: 'A', value: '1' },
      { name: 'S', valueFrom: { secretKeyRef: { name: 'sec', key: 'k' } } },
      { name: 'C', valueFrom: { configMapKeyRef: { name: 'cm', key: 'k', optional: true } } },
    ],
  };
  it('takes literal values and delivered values; leaves a missing optional one unset', () => {
    expect(
      resolveEnv(c, 'template.spec', { env: { main: { S: 's3' } }, files: {}, registryAuth: [] }),
    ).toEqual(['A=1', 'S=s3']);
  });
  it('names a missing required value', () => {
    expect(() => resolveEnv(c, 'template.spec', undefined)).toThrow(
      'template.spec.env[1] (S): the value of Secret sec key k was not delivered to this host',
    );
  });
});

describe('registryOf', () => {
  it.each([
    ['nginx:1.25', 'docker.io'],
    ['library/nginx', 'docker.io'],
    ['gcr.io/p/app:v1', 'gcr.io'],
    ['127.0.0.1:5000/app', '127.0.0.1:5000'],
    ['localhost/app', 'localhost'],
  ])('%s → %s', (image, registry) => expect(registryOf(image)).toBe(registry));
});

describe('salvageIntent', () => {
  const enc = (o: unknown) => new TextEncoder().encode(typeof o === 'string' ? o : JSON.stringify(o));
  it('reads namespace, workload and instances from an intent that did not validate', () => {
    expect(
      salvageIntent(
        'loc.ns.wl',
        enc({ namespace: 'ns', workload: 'wl', instances: [{ name: 'wl-loc-0', host: 'h' }, { bad: 1 }] }),
        'boom',
      ),
    ).toEqual({
      key: 'loc.ns.wl',
      namespace: 'ns',
      workload: 'wl',
      instances: [{ name: 'wl-loc-0', host: 'h' }],
      message: 'boom',
    });
  });
  it('gives up when no instance can be read', () => {
    expect(salvageIntent('loc.ns.wl', enc('{nope'), 'boom')).toBeUndefined();
    expect(salvageIntent('loc.ns.wl', enc({ instances: 'x' }), 'boom')).toBeUndefined();
  });
});

describe('the VM image catalog schema', () => {
  const a = { url: 'http://127.0.0.1/k', sha256: 'a'.repeat(64) };
  it('takes a kernel (+ initrd) or a disk image', () => {
    expect(CatalogImage.safeParse({ kernel: a, initrd: a }).success).toBe(true);
    expect(CatalogImage.safeParse({ disk: a }).data).toMatchObject({ disk: { format: 'qcow2' } });
  });
  it('rejects both, neither, a bad sha256 and non-HTTP URLs', () => {
    expect(CatalogImage.safeParse({ kernel: a, disk: a }).success).toBe(false);
    expect(CatalogImage.safeParse({}).success).toBe(false);
    expect(CatalogImage.safeParse({ kernel: { ...a, sha256: 'xyz' } }).success).toBe(false);
    expect(CatalogImage.safeParse({ kernel: { ...a, url: 'file:///etc/passwd' } }).success).toBe(false);
  });
});

describe('the sandbox launch image', () => {
  it('is a 129-byte ELF64 x86-64 executable in a valid one-file tar', () => {
    const elf = exitZeroElf();
    expect(elf.length).toBe(129);
    expect(elf.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    const tar = singleFileTar('probe', elf);
    expect(tar.length % 512).toBe(0);
    expect(tar.subarray(0, 5).toString()).toBe('probe');
    expect(Number.parseInt(tar.subarray(124, 135).toString(), 8)).toBe(129);
    let sum = 0;
    for (const [i, b] of tar.subarray(0, 512).entries()) sum += i >= 148 && i < 156 ? 32 : b;
    expect(Number.parseInt(tar.subarray(148, 154).toString(), 8)).toBe(sum);
  });
});

describe('agent configuration', () => {
  it('takes flags over environment over file, with labels, capacity overrides and VM settings', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeplane-agent-config-'));
    const file = path.join(dir, 'agent.yaml');
    const catalog = path.join(dir, 'catalog.yaml');
    fs.writeFileSync(catalog, 'images: {}\n');
    fs.writeFileSync(
      file,
      `location: from-file\nregion: r1\nzone: z-file\ncpu: "4"\nimageCatalog: ${catalog}\n`,
    );
    const c = loadAgentConfig(
      { config: file, zone: 'z-flag', memory: '8Gi', host: 'h1' },
      {
        EDGE_ZONE: 'z-env',
        EDGE_CITY_CODE: 'DFW',
        EDGE_LABELS: 'tier=edge,gpu=none',
        EDGE_VM_ACCEL: 'tcg',
        EDGE_VM_PROBE_KERNEL: '/boot/vmlinuz-probe',
      },
    );
    expect(c).toMatchObject({
      host: 'h1',
      location: 'from-file',
      imageCatalog: catalog,
      vmAccel: 'tcg',
      vmProbeKernel: '/boot/vmlinuz-probe',
      allocatableOverride: { cpuMillis: 4000, memoryBytes: 8 * 1024 * MiB },
      labels: {
        tier: 'edge',
        gpu: 'none',
        'topology.kubernetes.io/region': 'r1',
        'topology.kubernetes.io/zone': 'z-flag',
        'edgeplane.dev/city-code': 'DFW',
      },
    });
    fs.rmSync(dir, { recursive: true, force: true });
  });
  it('refuses an image catalog that does not load, naming the field', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeplane-agent-config-'));
    const file = path.join(dir, 'catalog.yaml');
    fs.writeFileSync(
      file,
      'images:\n  projects/p/global/images/x:\n    kernel: { url: http://127.0.0.1/k, sha256: nope }\n',
    );
    expect(() => loadAgentConfig({ location: 'ok', imageCatalog: file }, {})).toThrow(
      /image catalog .*catalog\.yaml: images\.projects\/p\/global\/images\/x\.kernel\.sha256: 64 lower-case hex digits/,
    );
    fs.rmSync(dir, { recursive: true, force: true });
  });
  it('names the bad setting', () => {
    expect(() => loadAgentConfig({ location: 'Bad_Location' }, {})).toThrow(
      /invalid agent configuration: location: a DNS label/,
    );
    expect(() => loadAgentConfig({ location: 'ok' }, { EDGE_VM_ACCEL: 'hvf' })).toThrow(/vmAccel/);
  });
  it('maps Node architectures to Kubernetes ones', () => {
    expect(kubeArch('x64')).toBe('amd64');
    expect(kubeArch('arm64')).toBe('arm64');
  });
});

describe('host capacity and the host report', () => {
  it('reports disk like a node’s ephemeral-storage: size of the state directory’s filesystem, free space in the report', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeplane-capacity-'));
    // The state directory need not exist yet: its filesystem is that of its nearest existing ancestor.
    const stateDir = path.join(dir, 'not', 'yet');
    const fsOfDir = fs.statfsSync(dir);
    const cap = await readCapacity({ stateDir, override: { cpuMillis: 1500 } });
    expect(cap.capacity).toEqual({
      cpuMillis: os.cpus().length * 1000,
      memoryBytes: os.totalmem(),
      ephemeralStorageBytes: fsOfDir.blocks * fsOfDir.bsize,
    });
    expect(cap.allocatable).toEqual({
      cpuMillis: 1500,
      memoryBytes: os.totalmem() - 256 * 1024 * 1024,
      ephemeralStorageBytes: fsOfDir.blocks * fsOfDir.bsize,
    });
    expect(cap.diskFreeBytes).toBeGreaterThan(0);
    expect(cap.diskFreeBytes).toBeLessThanOrEqual(cap.capacity.ephemeralStorageBytes!);

    const log = createLogger({ name: 'test', level: 'silent' });
    const agent = new Agent(loadAgentConfig({ location: 'loc', host: 'h1', stateDir }, {}), log);
    const monitor = new HostMonitor({ drivers: {}, stateDir, log });
    await monitor.refresh();
    // What Agent.start() sets up, without NATS or drivers.
    (agent as unknown as { host: HostMonitor }).host = monitor;
    // What a receiver decodes (receivers drop fields their schema does not know).
    const report = decode(HostReport, encode(agent.hostReport()));
    expect(report.capacity.ephemeralStorageBytes).toBe(fsOfDir.blocks * fsOfDir.bsize);
    expect(report.allocatable.ephemeralStorageBytes).toBe(fsOfDir.blocks * fsOfDir.bsize);
    expect(report.ephemeralStorageFreeBytes).toBe(monitor.capacity!.diskFreeBytes);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
