/** Status rollup is pure: instances and host reports in, Instance and Workload status out. */
import { describe, expect, it } from 'vitest';
import {
  instanceStatus,
  type ObservedInstance,
  setCondition,
  workloadStatus,
} from '../../coordinator/workloads/status.js';
import type { ReportedInstance } from '../../shared/nats/messages.js';

const now = '2026-11-22T12:00:00.000Z';
const later = '2026-11-22T12:05:00.000Z';

function reported(name: string, over: Partial<ReportedInstance> = {}): ReportedInstance {
  return {
    namespace: 'default',
    name,
    workload: 'web',
    templateHash: 'h1',
    phase: 'Running',
    ready: true,
    ...over,
  };
}

function obs(name: string, location: string, over: Partial<ObservedInstance> = {}): ObservedInstance {
  return {
    name,
    location,
    host: `host-${location}`,
    templateHash: 'h1',
    hostState: 'Ready',
    reported: reported(name),
    ...over,
  };
}

const base = {
  desired: 3,
  generation: 4,
  selector: 'workload=web',
  unplaced: 0,
  deleting: false,
  maxUnavailable: 0,
  now,
};

describe('workloadStatus', () => {
  it('is Running with every instance ready, with a per-location breakdown', () => {
    const s = workloadStatus({ ...base, instances: [obs('a', 'x'), obs('b', 'x'), obs('c', 'y')] });
    expect(s).toMatchObject({
      phase: 'Running',
      replicas: 3,
      readyReplicas: 3,
      availableReplicas: 3,
      observedGeneration: 4,
    });
    expect(s.locations).toEqual([
      { location: 'x', replicas: 2, readyReplicas: 2 },
      { location: 'y', replicas: 1, readyReplicas: 1 },
    ]);
    expect(s.conditions?.find((c) => c.type === 'Available')?.status).toBe('True');
  });

  it('is Pending before anything is placed, and says why placement fails', () => {
    const s = workloadStatus({
      ...base,
      instances: [],
      unplaced: 3,
      unschedulableReason: '0/2 hosts are available: 2 Insufficient memory.',
    });
    expect(s.phase).toBe('Pending');
    const p = s.conditions?.find((c) => c.type === 'Progressing');
    expect(p).toMatchObject({ status: 'False', reason: 'Unschedulable' });
    expect(p?.message).toContain('Insufficient memory');
  });

  it('is Provisioning while instances start, and does not count a host that went silent', () => {
    const s = workloadStatus({
      ...base,
      instances: [
        obs('a', 'x'),
        obs('b', 'x', { reported: reported('b', { phase: 'Starting', ready: false }) }),
        obs('c', 'y', { hostState: 'Disconnected' }),
      ],
    });
    expect(s).toMatchObject({ phase: 'Provisioning', readyReplicas: 1 });
  });

  it('does not count an instance that runs an old template', () => {
    const s = workloadStatus({ ...base, instances: [obs('a', 'x', { templateHash: 'h2' })], desired: 1 });
    expect(s).toMatchObject({ readyReplicas: 0, updatedReplicas: 0 });
  });

  it('is Failed when every instance failed, naming one of them', () => {
    const failed = (n: string) =>
      obs(n, 'x', { reported: reported(n, { phase: 'Failed', ready: false, message: 'exit code 1' }) });
    const s = workloadStatus({ ...base, desired: 2, instances: [failed('a'), failed('b')] });
    expect(s.phase).toBe('Failed');
    expect(s.conditions?.find((c) => c.type === 'Progressing')?.message).toContain('exit code 1');
  });

  it('is Failed with the reason when the spec is invalid', () => {
    const s = workloadStatus({
      ...base,
      instances: [],
      invalid: { reason: 'InvalidSpec', message: 'spec.template.spec.machineType: unknown' },
    });
    expect(s.phase).toBe('Failed');
    expect(s.conditions?.find((c) => c.type === 'Available')).toMatchObject({
      status: 'False',
      reason: 'InvalidSpec',
    });
  });

  it('is not Progressing, with the reason, when an intent cannot be published', () => {
    const s = workloadStatus({
      ...base,
      instances: [obs('web-a-0', 'a')],
      publishError: { reason: 'IntentTooLarge', message: 'intent a.default.web is 2000000 bytes' },
    });
    expect(s.conditions?.find((c) => c.type === 'Progressing')).toMatchObject({
      status: 'False',
      reason: 'IntentTooLarge',
      message: 'intent a.default.web is 2000000 bytes',
    });
  });

  it('keeps Available while within maxUnavailable', () => {
    const instances = [obs('a', 'x'), obs('b', 'x'), obs('c', 'x'), obs('d', 'x', { reported: undefined })];
    expect(
      workloadStatus({ ...base, desired: 4, instances, maxUnavailable: 1 }).conditions?.find(
        (c) => c.type === 'Available',
      )?.status,
    ).toBe('True');
    expect(
      workloadStatus({ ...base, desired: 4, instances, maxUnavailable: 0 }).conditions?.find(
        (c) => c.type === 'Available',
      )?.status,
    ).toBe('False');
  });

  it('keeps lastTransitionTime while a condition keeps its status', () => {
    const first = workloadStatus({ ...base, instances: [obs('a', 'x'), obs('b', 'x'), obs('c', 'y')] });
    const second = workloadStatus({
      ...base,
      instances: [obs('a', 'x'), obs('b', 'x'), obs('c', 'y')],
      previous: first,
      now: later,
    });
    expect(second.conditions).toEqual(first.conditions);
    const third = workloadStatus({ ...base, instances: [], previous: second, now: later });
    expect(third.conditions?.find((c) => c.type === 'Available')?.lastTransitionTime).toBe(later);
  });
});

describe('instanceStatus', () => {
  it('copies what the host reports', () => {
    const s = instanceStatus(
      obs('a', 'x', {
        reported: reported('a', {
          runtime: 'runsc',
          providerID: 'docker://1',
          ports: [{ containerPort: 80, hostIP: '127.0.0.1', hostPort: 31000 }],
        }),
      }),
      undefined,
      now,
    );
    expect(s).toMatchObject({
      phase: 'Running',
      ready: true,
      host: 'host-x',
      runtime: 'runsc',
      providerID: 'docker://1',
    });
    expect(s.conditions?.map((c) => [c.type, c.status])).toEqual([
      ['Ready', 'True'],
      ['Scheduled', 'True'],
    ]);
  });

  it('is Unknown when its host is disconnected, Pending before the host reports it', () => {
    expect(instanceStatus(obs('a', 'x', { hostState: 'Disconnected' }), undefined, now)).toMatchObject({
      phase: 'Unknown',
      ready: false,
    });
    expect(instanceStatus(obs('a', 'x', { reported: undefined }), undefined, now)).toMatchObject({
      phase: 'Pending',
      ready: false,
    });
  });
});

describe('setCondition', () => {
  it('replaces by type and sorts', () => {
    const c = setCondition(
      [{ type: 'B', status: 'True', lastTransitionTime: now }],
      { type: 'A', status: 'False' },
      later,
    );
    expect(c.map((x) => x.type)).toEqual(['A', 'B']);
  });
});
