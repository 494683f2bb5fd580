/**
 * The one narrow interface between the agent and a runtime, after Nomad's task drivers and the kubelet's CRI.
 * The reconciler only ever talks to a runtime through it; gVisor containers and QEMU VMs sit behind it.
 */
import type { ContainerState, InstancePhase, ResourceAmounts, Runtime } from '../../shared/api/index.js';
import type { InstanceTemplateSpec } from '../../shared/api/template.js';
import type { ResolvedValues } from '../../shared/nats/messages.js';

/** Everything a driver needs to start one instance. */
export interface InstanceRequest {
  /** Namespace of the Workload. */
  namespace: string;
  /** Instance name, unique in its namespace. */
  name: string;
  /** Workload name. */
  workload: string;
  /** Hash of the template; a running instance with another hash is replaced. */
  templateHash: string;
  /** What to run. */
  template: InstanceTemplateSpec;
  /** CPU and memory limits. */
  limits: ResourceAmounts;
  /** Labels of the instance. */
  labels: Record<string, string>;
  /** Secret/ConfigMap values the coordinator resolved for this host (env valueFrom, volume files, registry auth). */
  values?: ResolvedValues;
}

/** Result of running a command inside an instance. */
export interface ExecResult {
  /** Exit code; -1 when it timed out. */
  exitCode: number;
  /** Last KiB of combined stdout and stderr. */
  output: string;
}

/** The state of one instance as the runtime reports it. */
export interface InstanceState {
  /** Namespace of the Workload. */
  namespace: string;
  /** Instance name. */
  name: string;
  /** Workload name. */
  workload: string;
  /** Template hash it was started from. */
  templateHash: string;
  /** Lifecycle phase. */
  phase: InstancePhase;
  /** Whether every container runs and passes readiness. */
  ready: boolean;
  /** Runtime detail, e.g. runsc. */
  runtime: string;
  /** Runtime identifier of the instance (first container ID, VM id). */
  providerID?: string;
  /** Published ports. */
  ports: Array<{ name?: string; containerPort: number; hostIP?: string; hostPort?: number }>;
  /** IP addresses. */
  ips: string[];
  /** Per-container state. */
  containers: ContainerState[];
  /** Why it is not running, when it is not. */
  message?: string;
  /** When it last started (RFC 3339). */
  startedAt?: string;
}

/** A runtime that runs instances. Every method is idempotent. */
export interface Driver {
  /** Which kind of template this driver runs. */
  readonly runtime: Runtime;
  /** Whether the runtime works on this host (probed, not assumed). */
  probe(): Promise<{ ok: boolean; detail: string }>;
  /** Creates and starts the instance; a no-op when it already runs. Throws with a clear message on bad input. */
  start(request: InstanceRequest): Promise<InstanceState>;
  /** The instance's state, or undefined when the runtime has no such instance. */
  inspect(namespace: string, name: string): Promise<InstanceState | undefined>;
  /** Stops the instance gracefully (SIGTERM, then SIGKILL after the grace period); keeps it for inspection. */
  stop(namespace: string, name: string, graceSeconds: number): Promise<void>;
  /** Removes every trace of the instance (containers, scratch volumes; not persistent volumes). */
  destroy(namespace: string, name: string): Promise<void>;
  /** Every instance this host's agent started before, found by labels, so a restarted agent adopts them. */
  recover(): Promise<InstanceState[]>;
  /** Runs a command in one container of the instance (exec probes); absent when the runtime cannot. */
  exec?(
    namespace: string,
    name: string,
    container: string,
    command: string[],
    timeoutMs: number,
  ): Promise<ExecResult>;
  /** Restarts one container of the instance (failed liveness probe); absent when the runtime cannot. */
  restartContainer?(namespace: string, name: string, container: string, graceSeconds: number): Promise<void>;
}
