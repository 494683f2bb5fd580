/**
 * The one narrow interface between the agent and a runtime, after Nomad's task drivers and the kubelet's CRI.
 * The reconciler only ever talks to a runtime through it; gVisor containers and QEMU VMs sit behind it.
 */
import type { ContainerState, InstancePhase, ResourceAmounts, Runtime } from '../../shared/api/index.js';
import type { InstanceTemplateSpec } from '../../shared/api/template.js';
import type { InterfaceAssignment, ReportedInterface, ResolvedValues } from '../../shared/nats/messages.js';
import type { LogOptions, OutputCallback, OutputSource } from './output.js';

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
  /**
   * Its attachments to Networks, as the coordinator assigned them (`IntendedInstance.interfaces`); absent or empty:
   * none, and the instance is started exactly as before Networks existed. The driver programs them through the
   * host's network (`HostNetwork`) before the instance's own processes start, so they find their interfaces up.
   */
  interfaces?: InterfaceAssignment[];
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
  /** Its interfaces on Networks as programmed on the host now (absent: none). */
  interfaces?: ReportedInterface[];
  /** Per-container state. */
  containers: ContainerState[];
  /** Why it is not running, when it is not. */
  message?: string;
  /** When it last started (RFC 3339). */
  startedAt?: string;
  /**
   * Where its CPU time is counted (cpu-usage.ts reads it): `cgroup` — the cgroups of these host pids (a gVisor
   * sandbox per container: its Sentry, gofer and stubs share the container's cgroup); `process` — this process's
   * own user + system time (QEMU: every vCPU thread is one of its threads). Absent: not running, nothing to count.
   */
  cpuSource?: { kind: 'cgroup' | 'process'; pids: number[] };
}

/** Whether a runtime works on this host, and what it found out (versions, the VM accelerator, why not). */
export interface RuntimeCheck {
  /** Whether the runtime can start instances now. */
  ok: boolean;
  /** What was checked and found, for the agent's status endpoint and logs. */
  detail: string;
}

/**
 * A runtime that runs instances. Every method is idempotent.
 *
 * The reconciler calls {@link list} on every pass and {@link isComplete} on what it lists; it never looks at a
 * runtime's own details (container reasons, VM records), so a new driver needs nothing outside its own file.
 */
export interface Driver {
  /** Which kind of template this driver runs. */
  readonly runtime: Runtime;
  /**
   * Whether the runtime works on this host, found out by using it (a sandbox that runs a program, qemu that
   * answers), not assumed from what is installed. The host monitor calls it every minute; only runtimes whose
   * check passes start instances.
   */
  checkRuntime(): Promise<RuntimeCheck>;
  /** Creates and starts the instance; a no-op when it already runs. Throws with a clear message on bad input. */
  start(request: InstanceRequest): Promise<InstanceState>;
  /** The instance's state, or undefined when the runtime has no such instance. */
  inspect(namespace: string, name: string): Promise<InstanceState | undefined>;
  /** Stops the instance gracefully (SIGTERM, then SIGKILL after the grace period); keeps it for inspection. */
  stop(namespace: string, name: string, graceSeconds: number): Promise<void>;
  /** Removes every trace of the instance (containers, scratch volumes; not persistent volumes). */
  destroy(namespace: string, name: string): Promise<void>;
  /**
   * Every instance of this host the runtime has now, found by what the driver marks them with (container labels,
   * VM state directories), never by what this process remembers. The reconciler calls it at the start of every
   * pass, so it is the one source of "what runs here": adoption rides on it — a restarted agent lists what the
   * previous one started and keeps what the intents still want — and so does the removal of what they do not.
   * Throws when the runtime cannot be observed (dockerd down); its instances are then left alone.
   */
  list(): Promise<InstanceState[]>;
  /**
   * Whether `state` (of the request's template hash) has everything `request` asks for (its Network ports are
   * the reconciler's to check, against the host's network). An agent killed half-way
   * through a start may leave an instance incomplete (fewer containers, one created but never started); the
   * reconciler replaces such an instance instead of keeping it.
   */
  isComplete(state: InstanceState, request: InstanceRequest): boolean;
  /**
   * Rewrites the running instance's Network ports from `interfaces` in place (a changed policy or MTU, ports of
   * the same identity), without restarting it. Absent when the runtime takes no attachments.
   */
  reattach?(namespace: string, name: string, interfaces: InterfaceAssignment[]): Promise<void>;
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
  /**
   * The output of one container, or a VM's serial console, for `edgectl logs` (last N lines, since, follow), as a
   * pausable source; absent when the runtime keeps none.
   */
  logs?(namespace: string, name: string, options: LogOptions, onData: OutputCallback): Promise<OutputSource>;
  /**
   * Runs a command in one container for `edgectl exec`, streaming stdout and stderr; the source ends with the exit
   * code. Absent when the runtime cannot (VMs: no agent inside the guest).
   */
  execStream?(
    namespace: string,
    name: string,
    container: string,
    command: string[],
    onData: OutputCallback,
  ): Promise<OutputSource>;
}
