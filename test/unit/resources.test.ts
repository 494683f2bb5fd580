import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_REQUESTS,
  formatCpuMillis,
  formatMemoryBytes,
  instanceLimits,
  instanceRequests,
  isMachineType,
  MACHINE_FAMILIES,
  machineTypeResources,
  parseCpuMillis,
  parseMemoryBytes,
  withQuantities,
} from '../../shared/resources.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

describe('parseCpuMillis', () => {
  it.each([
    ['100m', 100],
    ['2', 2000],
    [2, 2000],
    ['0.5', 500],
    [0.5, 500],
    ['0.1', 100],
    [0.1, 100],
    ['1.5', 1500],
    ['250m', 250],
    ['1000m', 1000],
    ['1e3', 1_000_000],
    ['1k', 1_000_000],
    ['.5', 500],
    ['0', 0],
    ['1.0005', 1001], // rounded up to a whole millicore, as Kubernetes does
    ['500u', 1],
  ] as const)('%s → %d', (input, want) => {
    expect(parseCpuMillis(input)).toBe(want);
  });

  it.each(['abc', '', '-1', '1x', '2 cores', '1.2.3', 'm'])('rejects %j naming the input', (bad) => {
    expect(() => parseCpuMillis(bad)).toThrow(new RegExp(`CPU quantity "${bad.replace('.', '\\.')}"`));
  });

  it('rejects negative and non-finite numbers', () => {
    expect(() => parseCpuMillis(-1)).toThrow(/CPU quantity -1/);
    expect(() => parseCpuMillis(Number.NaN)).toThrow(/CPU quantity NaN/);
    expect(() => parseCpuMillis(Number.POSITIVE_INFINITY)).toThrow(/CPU quantity Infinity/);
  });
});

describe('parseMemoryBytes', () => {
  it.each([
    ['128Mi', 128 * MiB],
    ['4Gi', 4 * GiB],
    ['1G', 1e9],
    ['512M', 512e6],
    ['1Ki', 1024],
    ['1k', 1000],
    ['1.5Gi', 1.5 * GiB],
    ['1e9', 1e9],
    ['1Ti', 1024 ** 4],
    [1024, 1024],
    ['129M', 129e6],
    ['0.5', 1], // rounded up to a whole byte
  ] as const)('%s → %d', (input, want) => {
    expect(parseMemoryBytes(input)).toBe(want);
  });

  it.each(['128MB', 'lots', '4 Gi', '-1Gi', 'Gi'])('rejects %j naming the input', (bad) => {
    expect(() => parseMemoryBytes(bad)).toThrow(/memory quantity/);
    expect(() => parseMemoryBytes(bad)).toThrow(bad);
  });

  it('rejects quantities too large to count in bytes', () => {
    expect(() => parseMemoryBytes('100Ei')).toThrow(/too large/);
  });
});

describe('formatting', () => {
  it('formats millicores and bytes back into quantities', () => {
    expect(formatCpuMillis(1500)).toBe('1500m');
    expect(formatCpuMillis(2000)).toBe('2');
    expect(formatMemoryBytes(128 * MiB)).toBe('128Mi');
    expect(formatMemoryBytes(4 * GiB)).toBe('4Gi');
    expect(formatMemoryBytes(1000)).toBe('1000');
  });
});

describe('machineTypeResources', () => {
  it.each([
    // The machine types named in the Workload docs.
    ['e2-micro', 2, 1],
    ['e2-small', 2, 2],
    ['e2-medium', 2, 4],
    ['n2-standard-4', 4, 16],
    ['c2-standard-8', 8, 32],
    ['n2-standard-2', 2, 8],
    // Their families, with GCP's ratios.
    ['e2-standard-8', 8, 32],
    ['e2-highmem-4', 4, 32],
    ['e2-highcpu-16', 16, 16],
    ['n2-highmem-8', 8, 64],
    ['n2-highcpu-32', 32, 32],
    ['n2d-standard-224', 224, 896],
    ['n1-standard-1', 1, 3.75],
    ['n1-standard-2', 2, 7.5],
    ['n1-highmem-4', 4, 26],
    ['c2-standard-60', 60, 240],
    ['n2-custom-4-8192', 4, 8],
    ['custom-2-4096', 2, 4],
  ] as const)('%s → %d vCPU, %d GiB', (name, vcpu, gib) => {
    expect(machineTypeResources(name)).toEqual({
      cpuMillis: vcpu * 1000,
      memoryBytes: Math.round(gib * GiB),
    });
  });

  it('lists the supported families for an unknown name', () => {
    expect(() => machineTypeResources('t2.micro')).toThrow(/Unknown machine type "t2\.micro"/);
    expect(() => machineTypeResources('t2.micro')).toThrow(/e2-micro, e2-small, e2-medium/);
    for (const f of MACHINE_FAMILIES) expect(() => machineTypeResources('x')).toThrow(`${f.prefix}-N`);
  });

  it('names the sizes of a family for a size GCP does not offer', () => {
    expect(() => machineTypeResources('n2-standard-3')).toThrow(/n2-standard comes with 2, 4, 8/);
    expect(() => machineTypeResources('c2-standard-2')).toThrow(/c2-standard comes with 4, 8, 16, 30, 60/);
  });

  it('isMachineType', () => {
    expect(isMachineType('e2-small')).toBe(true);
    expect(isMachineType('e2-large')).toBe(false);
  });
});

describe('instanceRequests', () => {
  it('uses resources.requests of the template (the advanced example of the Workload guide)', () => {
    const spec = {
      machineType: 'n2-standard-4',
      resources: { requests: { cpu: '2', memory: '4Gi' }, limits: { cpu: '4', memory: '8Gi' } },
    };
    expect(instanceRequests(spec)).toEqual({ cpuMillis: 2000, memoryBytes: 4 * GiB });
    expect(instanceLimits(spec)).toEqual({ cpuMillis: 4000, memoryBytes: 8 * GiB });
  });

  it('sums containers (the reference examples)', () => {
    const spec = {
      containers: [
        {
          name: 'nginx',
          resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '500m', memory: '512Mi' } },
        },
        {
          name: 'api',
          resources: { requests: { cpu: '200m', memory: '256Mi' }, limits: { cpu: '1000m', memory: '1Gi' } },
        },
      ],
    };
    expect(instanceRequests(spec)).toEqual({ cpuMillis: 300, memoryBytes: 384 * MiB });
    expect(instanceLimits(spec)).toEqual({ cpuMillis: 1500, memoryBytes: 1536 * MiB });
  });

  it('takes a container limit as its request when it sets no request, as Kubernetes does', () => {
    expect(
      instanceRequests({ containers: [{ resources: { limits: { cpu: '1', memory: '1Gi' } } }] }),
    ).toEqual({
      cpuMillis: 1000,
      memoryBytes: GiB,
    });
  });

  it('falls back to the machine type, per resource', () => {
    expect(instanceRequests({ machineType: 'e2-small' })).toEqual({ cpuMillis: 2000, memoryBytes: 2 * GiB });
    expect(instanceRequests({ machineType: 'e2-small', resources: { requests: { cpu: '500m' } } })).toEqual({
      cpuMillis: 500,
      memoryBytes: 2 * GiB,
    });
    expect(instanceLimits({ machineType: 'e2-medium' })).toEqual({ cpuMillis: 2000, memoryBytes: 4 * GiB });
  });

  it('containers without resources fall back to the machine type or the default', () => {
    expect(instanceRequests({ containers: [{ name: 'app' }, { name: 'log-collector' }] })).toEqual(
      DEFAULT_REQUESTS,
    );
    expect(instanceRequests({})).toEqual({ cpuMillis: 100, memoryBytes: 128 * MiB });
  });

  it('limits fall back to requests', () => {
    expect(instanceLimits({ resources: { requests: { cpu: '250m', memory: '64Mi' } } })).toEqual({
      cpuMillis: 250,
      memoryBytes: 64 * MiB,
    });
  });

  it('reports a bad quantity or machine type', () => {
    expect(() => instanceRequests({ resources: { requests: { cpu: 'lots' } } })).toThrow(
      /CPU quantity "lots"/,
    );
    expect(() => instanceRequests({ machineType: 'm5.large' })).toThrow(/Unknown machine type "m5\.large"/);
  });
});

describe('withQuantities', () => {
  it('puts Node-style quantities beside the numbers, and they parse back to the same numbers', () => {
    expect(
      withQuantities({ cpuMillis: 64_000, memoryBytes: 256 * 2 ** 30, ephemeralStorageBytes: 100 * 2 ** 30 }),
    ).toEqual({
      cpuMillis: 64_000,
      memoryBytes: 256 * 2 ** 30,
      ephemeralStorageBytes: 100 * 2 ** 30,
      cpu: '64',
      memory: '256Gi',
      'ephemeral-storage': '100Gi',
    });
    expect(withQuantities({ cpuMillis: 7500, memoryBytes: 1000 })).toEqual({
      cpuMillis: 7500,
      memoryBytes: 1000,
      cpu: '7500m',
      memory: '1000',
    });
    fc.assert(
      fc.property(fc.nat(10_000_000), fc.nat(2 ** 45), (cpuMillis, memoryBytes) => {
        const q = withQuantities({ cpuMillis, memoryBytes });
        expect(parseCpuMillis(q.cpu)).toBe(cpuMillis);
        expect(parseMemoryBytes(q.memory)).toBe(memoryBytes);
      }),
    );
  });
});
