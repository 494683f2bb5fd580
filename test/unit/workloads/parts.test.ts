/** The Workload controller's small pure parts: naming, validation, the placement adapters and the allocation index. */
import { describe, expect, it } from 'vitest';
import { AllocationIndex } from '../../../coordinator/hosts/allocation.js';
import type { HostEntry } from '../../../coordinator/hosts/registry.js';
import {
  InstanceNamer,
  nextSurgeName,
  ordinalOf,
  parseQueueKey,
  queueKey,
  SURGE_ORDINAL_BASE,
  surgeOrdinal,
} from '../../../coordinator/workloads/naming.js';
import { SURGE_LABEL, WORKLOAD_UID_LABEL } from '../../../coordinator/workloads/objects.js';
import { placementHosts, placementInstances } from '../../../coordinator/workloads/placement-input.js';
import { NO_LOOKUP } from '../../../coordinator/workloads/references.js';
import type { InstanceObject } from '../../../coordinator/workloads/types.js';
import { conflictingGroup, validateWorkload } from '../../../coordinator/workloads/validate.js';
import { GROUP } from '../../../shared/api/index.js';
import { workloadObject } from './world.js';

const inst = (name: string, host: string, over: Partial<InstanceObject['metadata']> = {}): InstanceObject =>
  ({
    metadata: { name, namespace: 'default', labels: { [WORKLOAD_UID_LABEL]: 'uid-web' }, ...over },
    spec: {
      workloadRef: { name: 'web' },
      location: 'loc-a',
      host,
      ordinal: ordinalOf(name),
      runtime: 'gvisor',
      resources: { cpuMillis: 100, memoryBytes: 10 },
    },
  }) as unknown as InstanceObject;

describe('naming', () => {
  it('reads ordinals, -1 for a name without one', () => {
    expect(ordinalOf('web-us-central1-a-12')).toBe(12);
    expect(ordinalOf('web-a-surge-3')).toBe(3);
    expect(ordinalOf('web')).toBe(-1);
  });

  it('gives surge instances the lowest free index and ordinals above every replica', () => {
    const taken = new Set(['web-a-surge-0', 'web-a-surge-2']);
    expect(nextSurgeName('web', 'a', taken)).toBe('web-a-surge-1');
    expect(nextSurgeName('web', 'a', taken)).toBe('web-a-surge-3');
    expect(surgeOrdinal('web-a-surge-3')).toBe(SURGE_ORDINAL_BASE + 3);
  });

  it('names replicas with the lowest free ordinal per location', () => {
    const namer = new InstanceNamer('web', ['web-a-0', 'web-a-2']);
    expect([namer.name('a'), namer.name('a'), namer.name('b')]).toEqual(['web-a-1', 'web-a-3', 'web-b-0']);
  });

  it('round-trips queue keys', () => {
    expect(parseQueueKey(queueKey(GROUP, 'ns', 'web'))).toEqual({
      group: GROUP,
      namespace: 'ns',
      name: 'web',
    });
  });
});

describe('validateWorkload', () => {
  const spec = (image: string) => ({ replicas: 1, template: { spec: { image } } });

  it('takes the runtime from the image', () => {
    const v = validateWorkload({
      workload: workloadObject(spec('projects/p/global/images/x')),
      conflict: undefined,
      lookup: NO_LOOKUP,
    });
    expect('valid' in v && v.valid.runtime).toBe('vm');
  });

  it('blocks a projects/ image that is no VM image, naming the field', () => {
    const v = validateWorkload({
      workload: workloadObject(spec('projects/p/images/x')),
      conflict: undefined,
      lookup: NO_LOOKUP,
    });
    expect(v).toEqual({
      blocked: {
        reason: 'InvalidSpec',
        message: expect.stringMatching(
          /^spec\.template\.spec\.image: unknown image kind "projects\/p\/images\/x"/,
        ),
      },
    });
  });

  it('blocks on a name conflict and on missing references', () => {
    const wl = workloadObject(spec('nginx'));
    expect(
      validateWorkload({ workload: wl, conflict: 'compute.miloapis.com', lookup: NO_LOOKUP }),
    ).toMatchObject({
      blocked: { reason: 'NameConflict' },
    });
    const withSecret = workloadObject({
      replicas: 1,
      template: {
        spec: { image: 'nginx', env: [{ name: 'A', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }] },
      },
    });
    expect(validateWorkload({ workload: withSecret, conflict: undefined, lookup: NO_LOOKUP })).toMatchObject({
      blocked: { reason: 'MissingReferences' },
    });
  });

  it('lets the oldest Workload of a name keep it; on a tie, the group listed first', () => {
    const at = (t: string) => {
      const w = workloadObject(spec('nginx'));
      w.metadata.creationTimestamp = t;
      return w;
    };
    const older = { group: 'compute.miloapis.com', workload: at('2026-01-01T00:00:00Z') };
    expect(conflictingGroup(GROUP, at('2026-02-01T00:00:00Z'), [older])).toBe('compute.miloapis.com');
    expect(conflictingGroup(GROUP, at('2026-01-01T00:00:00Z'), [older])).toBeUndefined();
  });
});

describe('placement adapters and the allocation index', () => {
  it('indexes allocation once per Instance change', () => {
    let list = [inst('web-loc-a-0', 'h1'), inst('web-loc-a-1', 'h1')];
    let changed = () => {};
    let scans = 0;
    const index = new AllocationIndex({
      list: () => {
        scans++;
        return list;
      },
      onChange: (fn) => {
        changed = fn;
      },
    });
    expect(index.of('h1')).toEqual({ allocated: { cpuMillis: 200, memoryBytes: 20 }, instances: 2 });
    expect(index.of('h2')).toEqual({ allocated: { cpuMillis: 0, memoryBytes: 0 }, instances: 0 });
    expect(scans).toBe(1);
    list = [inst('web-loc-a-0', 'h1')];
    changed();
    expect(index.of('h1').instances).toBe(1);
    expect(scans).toBe(2);
  });

  it('keeps hosts that have not reported yet during the warm-up only, never Lost ones', () => {
    const allocation = new AllocationIndex({
      list: () => [inst('web-loc-a-0', 'h1'), inst('web-loc-a-1', 'h2')],
      onChange: () => undefined,
    }).all();
    const entry = (host: string, state: HostEntry['state']) =>
      ({
        state,
        report: {
          host,
          location: 'loc-a',
          labels: {},
          allocatable: { cpuMillis: 1000, memoryBytes: 100 },
          runtimes: ['gvisor'],
        },
      }) as unknown as HostEntry;
    expect(
      placementHosts([entry('h1', 'Ready')], allocation, false).map((h) => [h.name, h.allocated.cpuMillis]),
    ).toEqual([['h1', 100]]);
    const warm = placementHosts([entry('h1', 'Ready'), entry('h3', 'Lost')], allocation, true);
    expect(warm.map((h) => [h.name, h.ready, h.location])).toEqual([
      ['h1', true, 'loc-a'],
      ['h2', false, 'loc-a'],
    ]);
  });

  it('marks surge instances and carries the required anti-affinity of their Workload', () => {
    const terms = [{ topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { app: 'x' } } }];
    const wl = workloadObject({
      placement: { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: terms } } },
    });
    const out = placementInstances(
      [
        inst('web-loc-a-0', 'h1'),
        inst('web-loc-a-surge-0', 'h1', {
          labels: { [WORKLOAD_UID_LABEL]: 'uid-web', [SURGE_LABEL]: 'true' },
        }),
      ],
      [wl],
    );
    expect(out.map((i) => [i.name, i.workload, i.surge ?? false])).toEqual([
      ['web-loc-a-0', 'default/web', false],
      ['web-loc-a-surge-0', 'default/web', true],
    ]);
    expect(out[0]!.antiAffinity).toEqual(terms);
  });
});
