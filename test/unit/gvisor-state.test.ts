/** The gVisor driver's pure parts: containers → instance state, and which instances are complete. */
import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { GvisorDriver } from '../../agent/drivers/gvisor.js';
import {
  CREATED_NOT_STARTED,
  HOLDER_DOWN,
  instanceStateOf,
  LABELS,
  type ObservedContainer,
  STOPPED_AFTER_MS,
} from '../../agent/drivers/gvisor-state.js';
import { createLogger } from '../../shared/log.js';

const log = createLogger({ name: 'test', level: 'silent' });

/** A container of instance ns/web-0 as dockerd reports it. */
function container(
  index: number,
  name: string,
  state: Partial<Docker.ContainerInspectInfo['State']>,
  extra: { ports?: Docker.PortMap; portNames?: Record<string, string>; restarts?: number } = {},
): ObservedContainer {
  return {
    info: {
      Id: `id-${name}`,
      Labels: {
        [LABELS.namespace]: 'ns',
        [LABELS.instance]: 'web-0',
        [LABELS.workload]: 'web',
        [LABELS.container]: name,
        [LABELS.index]: String(index),
        [LABELS.templateHash]: 'abc',
        ...(extra.portNames ? { [LABELS.portNames]: JSON.stringify(extra.portNames) } : {}),
      },
    } as unknown as Docker.ContainerInfo,
    inspect: {
      Name: `/edge_${name}`,
      RestartCount: extra.restarts ?? 0,
      State: {
        Running: false,
        Restarting: false,
        Status: 'exited',
        ExitCode: 0,
        StartedAt: `t${index}`,
        ...state,
      },
      NetworkSettings: {
        Ports: extra.ports ?? {},
        Networks: { bridge: { IPAddress: `10.0.0.${index + 2}` } },
      },
    } as unknown as Docker.ContainerInspectInfo,
  };
}

const RUNNING = { Running: true, Status: 'running' };

/** The network-namespace holder of ns/web-0 (netns-holder.ts), owning the published ports. */
function holder(state: Partial<Docker.ContainerInspectInfo['State']>): ObservedContainer {
  const c = container(0, 'holder', state, {
    ports: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '32770' }] },
    portNames: { '80/tcp': 'http' },
  });
  delete c.info.Labels[LABELS.container];
  delete c.info.Labels[LABELS.index];
  c.info.Labels[LABELS.role] = 'netns-holder';
  c.info.Id = 'id-holder';
  (c.inspect.NetworkSettings.Networks as Record<string, { IPAddress: string }>).bridge!.IPAddress =
    '10.0.0.9';
  return c;
}

describe('instanceStateOf', () => {
  it('orders containers by index and takes ports, address and start time from the first', () => {
    const s = instanceStateOf(
      [
        container(1, 'sidecar', RUNNING, { restarts: 1 }),
        container(0, 'app', RUNNING, {
          ports: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '32768' }] },
          portNames: { '80/tcp': 'http' },
        }),
      ],
      { sidecar: 2 },
      'runsc',
    );
    expect(s).toEqual({
      namespace: 'ns',
      name: 'web-0',
      workload: 'web',
      templateHash: 'abc',
      phase: 'Running',
      ready: true,
      runtime: 'runsc',
      providerID: 'docker://id-app',
      ports: [{ name: 'http', containerPort: 80, hostIP: '127.0.0.1', hostPort: 32768 }],
      ips: ['10.0.0.2'],
      containers: [
        { name: 'app', state: 'running', ready: true, restartCount: 0 },
        { name: 'sidecar', state: 'running', ready: true, restartCount: 3 },
      ],
      startedAt: 't0',
    });
  });

  it('says which container is not running, and why', () => {
    const created = instanceStateOf(
      [container(0, 'app', RUNNING), container(1, 'sidecar', { Status: 'created' })],
      {},
      'runsc',
    );
    expect(created.phase).toBe('Starting');
    expect(created.ready).toBe(false);
    expect(created.containers[1]).toMatchObject({ state: 'waiting', reason: CREATED_NOT_STARTED });
    expect(created.message).toBe('container sidecar created (exit code 0)');
    const crashing = instanceStateOf([container(0, 'app', { Restarting: true, ExitCode: 1 })], {}, 'runsc');
    expect(crashing).toMatchObject({
      phase: 'Starting',
      message: 'container app is restarting after exit (exit code 1)',
    });
    expect(crashing.containers[0]).toMatchObject({
      state: 'waiting',
      reason: 'CrashLoopBackOff',
      exitCode: 1,
    });
    const failed = instanceStateOf([container(0, 'app', { ExitCode: 2, Error: 'oom' })], {}, 'runsc');
    expect(failed).toMatchObject({ phase: 'Failed', message: 'container app exited (exit code 2): oom' });
    // Exited a while and not restarting: Docker will not start it again, so the instance is Stopped (the agent
    // will); exited just now it may be mid `docker restart`.
    const finished = { Status: 'exited', ExitCode: 143, FinishedAt: '2026-01-01T00:00:00Z' };
    const at = Date.parse(finished.FinishedAt);
    expect(instanceStateOf([container(0, 'app', finished)], {}, 'runsc', at + STOPPED_AFTER_MS).phase).toBe(
      'Stopped',
    );
    expect(instanceStateOf([container(0, 'app', finished)], {}, 'runsc', at + 1000).phase).toBe('Failed');
    expect(failed.containers[0]).toMatchObject({ state: 'exited', reason: 'Error', message: 'oom' });
  });
});

describe('instanceStateOf with a network-namespace holder', () => {
  it('takes ports and address from the holder, and lists only the template containers', () => {
    const s = instanceStateOf([container(0, 'app', RUNNING), holder(RUNNING)], {}, 'runsc');
    expect(s).toMatchObject({
      phase: 'Running',
      ready: true,
      providerID: 'docker://id-app',
      ports: [{ name: 'http', containerPort: 80, hostIP: '127.0.0.1', hostPort: 32770 }],
      ips: ['10.0.0.9'],
      startedAt: 't0',
    });
    expect(s.containers.map((c) => c.name)).toEqual(['app']);
  });

  it('is Failed when the holder is not running, even with every container running', () => {
    const s = instanceStateOf([container(0, 'app', RUNNING), holder({ ExitCode: 137 })], {}, 'runsc');
    expect(s).toMatchObject({ phase: 'Failed', ready: false, message: HOLDER_DOWN });
  });

  it('makes up an instance on its own (the agent died before the containers were created)', () => {
    const s = instanceStateOf([holder(RUNNING)], {}, 'runsc');
    expect(s).toMatchObject({
      namespace: 'ns',
      name: 'web-0',
      phase: 'Starting',
      ready: false,
      containers: [],
    });
  });
});

describe('GvisorDriver.isComplete', () => {
  const driver = new GvisorDriver({ host: 'h', stateDir: '/nonexistent', log });
  const req = {
    namespace: 'ns',
    name: 'web-0',
    workload: 'web',
    templateHash: 'abc',
    labels: {},
    limits: { cpuMillis: 100, memoryBytes: 64 * 1024 * 1024 },
    template: {
      containers: [
        { name: 'app', image: 'busybox' },
        { name: 'sidecar', image: 'busybox' },
      ],
    },
  };

  it('wants every container of the template, each started at least once', () => {
    const both = instanceStateOf(
      [container(0, 'app', RUNNING), container(1, 'sidecar', RUNNING)],
      {},
      'runsc',
    );
    expect(driver.isComplete(both, req)).toBe(true);
    const one = instanceStateOf([container(0, 'app', RUNNING)], {}, 'runsc');
    expect(driver.isComplete(one, req)).toBe(false);
    const neverStarted = instanceStateOf(
      [container(0, 'app', RUNNING), container(1, 'sidecar', { Status: 'created' })],
      {},
      'runsc',
    );
    expect(driver.isComplete(neverStarted, req)).toBe(false);
    // An exited container was started: Docker restarts it; it is not replaced.
    const exited = instanceStateOf([container(0, 'app', RUNNING), container(1, 'sidecar', {})], {}, 'runsc');
    expect(driver.isComplete(exited, req)).toBe(true);
  });

  it('wants the network-namespace holder running, when there is one', () => {
    const up = [container(0, 'app', RUNNING), container(1, 'sidecar', RUNNING)];
    expect(driver.isComplete(instanceStateOf([...up, holder(RUNNING)], {}, 'runsc'), req)).toBe(true);
    expect(driver.isComplete(instanceStateOf([...up, holder({ ExitCode: 137 })], {}, 'runsc'), req)).toBe(
      false,
    );
    expect(driver.isComplete(instanceStateOf([holder(RUNNING)], {}, 'runsc'), req)).toBe(false);
  });
});
