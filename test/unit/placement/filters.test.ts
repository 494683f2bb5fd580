import { describe, expect, it } from 'vitest';
import {
  firstFailing,
  insufficient,
  Reasons,
  staticFilters,
} from '../../../coordinator/placement/filters.js';
import { compileNodePreferences, resourceScore } from '../../../coordinator/placement/scoring.js';
import { GiB, host, workload } from './fixtures.js';

describe('static filters', () => {
  it('cordoned, not ready and runtime come first, in that order', () => {
    const w = workload('w', 1, { nodeSelector: { provider: 'aws' } });
    const f = staticFilters(w);
    expect(f.map((x) => x.name)).toEqual(['NodeUnschedulable', 'NodeReady', 'Runtime', 'NodeSelector']);
    expect(firstFailing(f, host('a', { cordoned: true, ready: false }))?.reason).toBe(Reasons.cordoned);
    expect(firstFailing(f, host('a', { ready: false }))?.reason).toBe(Reasons.notReady);
    expect(firstFailing(f, host('a', { runtimes: ['vm'] }))?.reason).toBe("didn't offer the gvisor runtime");
    expect(firstFailing(f, host('a'))?.reason).toBe("didn't match node selector");
    expect(firstFailing(f, host('a', { provider: 'aws' }))).toBeUndefined();
  });

  it('a VM image needs a host that offers VMs', () => {
    const f = staticFilters(workload('vm', 1, undefined, { runtime: 'vm' }));
    expect(firstFailing(f, host('a', { runtimes: ['gvisor'] }))?.reason).toBe("didn't offer the vm runtime");
    expect(firstFailing(f, host('b', { runtimes: ['vm'] }))).toBeUndefined();
  });

  it('providers and regions are required selectors on provider and topology.kubernetes.io/region', () => {
    const f = staticFilters(workload('w', 1, { providers: ['gcp'], regions: ['us-central1'] }));
    expect(firstFailing(f, host('a', { provider: 'gcp', region: 'us-central1' }))).toBeUndefined();
    expect(firstFailing(f, host('a', { provider: 'aws', region: 'us-central1' }))?.reason).toBe(
      Reasons.providers,
    );
    expect(firstFailing(f, host('a', { provider: 'gcp', region: 'europe-west1' }))?.reason).toBe(
      Reasons.regions,
    );
    expect(staticFilters(workload('w', 1, { providers: [], regions: [] })).length).toBe(3);
  });

  it('required node affinity', () => {
    const f = staticFilters(
      workload('w', 1, {
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                { matchExpressions: [{ key: 'provider', operator: 'NotIn', values: ['aws'] }] },
              ],
            },
          },
        },
      }),
    );
    expect(firstFailing(f, host('a', { provider: 'aws' }))?.reason).toBe(Reasons.nodeAffinity);
    expect(firstFailing(f, host('a', { provider: 'gcp' }))).toBeUndefined();
  });
});

describe('resource fit', () => {
  const cap = { cpuMillis: 1000, memoryBytes: GiB };
  it('fits exactly, and names what is short', () => {
    expect(
      insufficient(cap, { cpuMillis: 500, memoryBytes: 0 }, { cpuMillis: 500, memoryBytes: GiB }),
    ).toEqual([]);
    expect(insufficient(cap, { cpuMillis: 501, memoryBytes: 0 }, { cpuMillis: 500, memoryBytes: 1 })).toEqual(
      ['Insufficient cpu'],
    );
    expect(
      insufficient(cap, { cpuMillis: 900, memoryBytes: GiB }, { cpuMillis: 200, memoryBytes: 1 }),
    ).toEqual(['Insufficient cpu', 'Insufficient memory']);
  });
});

describe('scores', () => {
  it('Spread prefers the least allocated host, BinPack the most allocated', () => {
    const empty = resourceScore('Spread', 1000, 1000, 100, 100);
    const half = resourceScore('Spread', 1000, 1000, 600, 600);
    expect(empty).toBeGreaterThan(half);
    expect(resourceScore('BinPack', 1000, 1000, 100, 100)).toBeLessThan(
      resourceScore('BinPack', 1000, 1000, 600, 600),
    );
    expect(resourceScore('Spread', 1000, 1000, 250, 750)).toBeCloseTo(0.5);
  });

  it('node preferences sum the weights of matching terms (the Kubernetes docs weights example)', () => {
    const score = compileNodePreferences([
      {
        weight: 1,
        preference: { matchExpressions: [{ key: 'label-1', operator: 'In', values: ['key-1'] }] },
      },
      {
        weight: 50,
        preference: { matchExpressions: [{ key: 'label-2', operator: 'In', values: ['key-2'] }] },
      },
    ])!;
    expect(score(host('a', { labels: { 'label-1': 'key-1' } }))).toBe(1);
    expect(score(host('b', { labels: { 'label-2': 'key-2' } }))).toBe(50);
    expect(score(host('c', { labels: { 'label-1': 'key-1', 'label-2': 'key-2' } }))).toBe(51);
    expect(compileNodePreferences(undefined)).toBeUndefined();
  });
});
