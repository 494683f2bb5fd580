/**
 * How the gVisor driver's containers make up instances, as plain data: the labels every container carries, and
 * the InstanceState that one instance's containers (their list entries and `docker inspect`) add up to. Pure, so
 * the mapping needs no dockerd to read or test.
 *
 * Invariant: the network namespace's owner holds the instance's ports and addresses: the network-namespace
 * holder (label `role`, netns-holder.ts) of an instance with Network attachments, else the first container
 * (label `container-index` 0). The start time is the first container's. A holder is no container of the
 * instance's template: it is not listed in `containers`, but an instance whose holder is not running is Failed.
 */
import type Docker from 'dockerode';
import type { ContainerState } from '../../shared/api/index.js';
import type { InstanceState } from './driver.js';

/** Reason of a container that was created but never started (its agent died in between): it is replaced. */
export const CREATED_NOT_STARTED = 'ContainerCreated';

/** How long a container must have been exited, and not restarting, for its instance to count as Stopped. */
export const STOPPED_AFTER_MS = 10_000;

/** Container labels the driver sets and reads. */
export const LABELS = {
  host: 'edgeplane.dev/host',
  namespace: 'edgeplane.dev/namespace',
  instance: 'edgeplane.dev/instance',
  workload: 'edgeplane.dev/workload',
  container: 'edgeplane.dev/container',
  index: 'edgeplane.dev/container-index',
  templateHash: 'edgeplane.dev/template-hash',
  portNames: 'edgeplane.dev/port-names',
  /** Set on the instance's network-namespace holder only (netns-holder.ts). */
  role: 'edgeplane.dev/role',
} as const;

/** Reason of an instance whose network-namespace holder is not running (it is replaced). */
export const HOLDER_DOWN = 'network namespace holder is not running';

/** One container of an instance as dockerd reports it. */
export interface ObservedContainer {
  /** Its entry in `docker ps` (labels, id). */
  info: Docker.ContainerInfo;
  /** Its `docker inspect`. */
  inspect: Docker.ContainerInspectInfo;
}

function parsePortNames(label: string | undefined): Record<string, string> {
  try {
    return label ? (JSON.parse(label) as Record<string, string>) : {};
  } catch {
    return {};
  }
}

/**
 * The state of the instance made of `observed` (one instance's containers, any order, at least one).
 * `probeRestarts` are the restarts after failed liveness probes by container name, which Docker does not count;
 * `runtime` is the OCI runtime name reported as the instance's runtime.
 */
export function instanceStateOf(
  observed: ObservedContainer[],
  probeRestarts: Record<string, number>,
  runtime: string,
  now = Date.now(),
): InstanceState {
  const holder = observed.find((o) => o.info.Labels[LABELS.role] !== undefined);
  const sorted = observed
    .filter((o) => o !== holder)
    .sort((a, b) => Number(a.info.Labels[LABELS.index]) - Number(b.info.Labels[LABELS.index]));
  // A holder left alone (its agent died before the containers were created) still makes up the instance.
  const first = (sorted[0] ?? holder)!.info;
  const netOwner = holder ?? sorted[0]!;
  const containers: ContainerState[] = [];
  const ports: InstanceState['ports'] = [];
  const ips: string[] = [];
  let startedAt: string | undefined;
  let message: string | undefined;
  for (const { info, inspect: d } of sorted) {
    const s = d.State;
    const running = s.Running && !s.Restarting;
    containers.push({
      name: info.Labels[LABELS.container] ?? d.Name,
      state: running ? 'running' : s.Restarting || s.Status === 'created' ? 'waiting' : 'exited',
      ready: running,
      restartCount: (d.RestartCount ?? 0) + (probeRestarts[info.Labels[LABELS.container] ?? ''] ?? 0),
      ...(running ? {} : { exitCode: s.ExitCode }),
      ...(s.Restarting
        ? { reason: 'CrashLoopBackOff' }
        : s.Status === 'created'
          ? { reason: CREATED_NOT_STARTED }
          : s.Error
            ? { reason: 'Error', message: s.Error }
            : {}),
    });
    if (!running && !message) {
      message = `container ${info.Labels[LABELS.container]} ${s.Restarting ? 'is restarting after exit' : s.Status} (exit code ${s.ExitCode})${s.Error ? `: ${s.Error}` : ''}`;
    }
    if (info === first) startedAt = s.StartedAt;
  }
  {
    const { info, inspect: d } = netOwner;
    const names = parsePortNames(info.Labels[LABELS.portNames]);
    for (const [key, binds] of Object.entries(d.NetworkSettings.Ports ?? {})) {
      const containerPort = Number(key.split('/')[0]);
      const name = names[key];
      for (const b of binds ?? []) {
        ports.push({
          ...(name ? { name } : {}),
          containerPort,
          hostIP: b.HostIp,
          hostPort: Number(b.HostPort),
        });
      }
    }
    for (const net of Object.values(d.NetworkSettings.Networks ?? {}))
      if (net.IPAddress) ips.push(net.IPAddress);
  }
  const holderDown =
    holder !== undefined && !(holder.inspect.State.Running && !holder.inspect.State.Restarting);
  if (holderDown) message = HOLDER_DOWN;
  const allRunning = !holderDown && containers.length > 0 && containers.every((c) => c.state === 'running');
  const anyExited = containers.some((c) => c.state === 'exited');
  const anyWaiting = containers.some((c) => c.state === 'waiting');
  // A container exited for STOPPED_AFTER_MS and not restarting is one Docker will not restart (its policy is
  // unless-stopped: it was stopped by hand, or by a dockerd that crashed and came back without live-restore):
  // the instance is Stopped, and the reconciler starts it again with the crash-loop backoff, as it does a VM that
  // powered off. Exited for less is Failed: a `docker restart` (a failed liveness probe) passes through exited.
  const stopped = sorted.some(
    ({ inspect: d }) =>
      !d.State.Running &&
      !d.State.Restarting &&
      d.State.Status === 'exited' &&
      now - Date.parse(d.State.FinishedAt) >= STOPPED_AFTER_MS,
  );
  const phase = holderDown
    ? 'Failed'
    : allRunning
      ? 'Running'
      : anyWaiting
        ? 'Starting'
        : stopped
          ? 'Stopped'
          : anyExited
            ? 'Failed'
            : 'Starting';
  const pids = sorted.map(({ inspect: d }) => d.State.Pid).filter((pid) => pid > 0);
  return {
    namespace: first.Labels[LABELS.namespace]!,
    name: first.Labels[LABELS.instance]!,
    workload: first.Labels[LABELS.workload] ?? '',
    templateHash: first.Labels[LABELS.templateHash] ?? '',
    phase,
    ready: allRunning && containers.every((c) => c.ready),
    runtime,
    providerID: `docker://${first.Id}`,
    ports,
    ips,
    containers,
    ...(message && !allRunning ? { message } : {}),
    ...(startedAt ? { startedAt } : {}),
    ...(pids.length ? { cpuSource: { kind: 'cgroup' as const, pids } } : {}),
  };
}
