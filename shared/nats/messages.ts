/**
 * The messages that cross NATS, as zod schemas. Every message has a `v` (schema version); receivers accept
 * unknown newer fields (`.loose()`) and reject malformed messages with a logged, counted error, never a crash.
 */
import { z } from 'zod';
import { ContainerState, InstancePhase, Runtime } from '../api/instance.js';
import { Condition, HostResourceAmounts, ResourceAmounts } from '../api/meta.js';
import { InstanceTemplateSpec } from '../api/template.js';

/** Current version of the message schemas. */
export const MESSAGE_VERSION = 1;

/**
 * Ingress rule of a network attachment, Datum's shape: traffic to `ports` (all when absent) from `from` (anywhere
 * when absent) is let in. Replies to the instance's own connections always pass (the rules are stateful).
 */
export const IngressRule = z
  .object({
    /** Ports let in: a port, or a range `port`..`endPort`; protocol TCP when absent. */
    ports: z
      .array(
        z
          .object({
            protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
            port: z.number().int().min(1).max(65535).optional(),
            endPort: z.number().int().min(1).max(65535).optional(),
          })
          .loose(),
      )
      .optional(),
    /** Sources let in: address blocks, each less its exceptions. */
    from: z
      .array(
        z
          .object({ ipBlock: z.object({ cidr: z.string(), except: z.array(z.string()).optional() }).loose() })
          .loose(),
      )
      .optional(),
  })
  .loose();
export type IngressRule = z.infer<typeof IngressRule>;

/**
 * One network attachment of an instance as the coordinator assigned it: everything a host needs to program the
 * instance's port on the Network's segment. Listed in `networkInterfaces` order.
 */
export const InterfaceAssignment = z
  .object({
    /** Name of the Network, in the Workload's namespace. */
    network: z.string(),
    /** Segment id of the Network: its VXLAN id, unique in the installation (1..16777215). */
    segment: z.number().int().min(1).max(16_777_215),
    /** Name of the interface inside the instance: `net0`, `net1`, … by position in `networkInterfaces`. */
    name: z.string(),
    /** Locally administered unicast MAC address, stable for the slot (`02:…`). */
    mac: z.string(),
    /** The allocated address with the prefix length of its subnet, e.g. `10.0.1.5/24`. */
    address: z.string(),
    /** MTU of the interface (the Network's effective MTU). */
    mtu: z.number().int(),
    /** Whether this is the instance's primary interface (its `networkIP`). */
    primary: z.boolean(),
    /** Ingress policy; absent: every source and port is let in. Present and empty: nothing but replies. */
    ingress: z.array(IngressRule).optional(),
  })
  .loose();
export type InterfaceAssignment = z.infer<typeof InterfaceAssignment>;

/**
 * One Network's segment as the hosts of one location need it, kept in the segments KV bucket under
 * `<location>.<segment>`: the overlay addresses of every host (in every location) with an instance attached.
 * Written by the coordinator when that set changes; an agent programs VXLAN peers from it.
 */
export const NetworkSegment = z
  .object({
    /** Schema version. */
    v: z.number().int(),
    /** Segment id (the VXLAN id). */
    segment: z.number().int().min(1).max(16_777_215),
    /** The Network, `<namespace>/<name>`, for logs and device descriptions. */
    network: z.string(),
    /** Effective MTU of the segment. */
    mtu: z.number().int(),
    /** Hosts with instances on this segment, each with the overlay (underlay endpoint) address it reported. */
    peers: z.array(z.object({ host: z.string(), address: z.string() }).loose()),
    /** When the coordinator wrote it (RFC 3339). */
    updatedAt: z.string(),
  })
  .loose();
export type NetworkSegment = z.infer<typeof NetworkSegment>;

/** An interface of a running instance as its host reports it. */
export const ReportedInterface = z
  .object({
    /** Name of the Network. */
    network: z.string(),
    /** Interface name inside the instance. */
    name: z.string(),
    /** MAC address. */
    mac: z.string(),
    /** Address without prefix length. */
    address: z.string(),
  })
  .loose();
export type ReportedInterface = z.infer<typeof ReportedInterface>;

/** One instance a location must run, and the host it is placed on. */
export const IntendedInstance = z
  .object({
    /** Instance name, `<workload>-<location>-<ordinal>`. */
    name: z.string(),
    /** Host it must run on. */
    host: z.string(),
    /** Ordinal within the location. */
    ordinal: z.number().int(),
    /** Labels of the instance (template labels plus workload=<name>). */
    labels: z.record(z.string(), z.string()).default({}),
    /**
     * Template it runs, when not the intent's current one: the hash of one of `revisions` (a rolling update
     * has not reached this instance yet).
     */
    templateHash: z.string().optional(),
    /** Its network attachments with their assigned addresses; absent: no Network attached. */
    interfaces: z.array(InterfaceAssignment).optional(),
  })
  .loose();
export type IntendedInstance = z.infer<typeof IntendedInstance>;

/**
 * Values the coordinator resolved from the Workload's Secrets and ConfigMaps, for the agent to hand to the
 * instances. They never cross NATS in clear text: the coordinator seals them per receiving host (see `sealed`).
 */
const ResolvedValuesOfTemplate = z
  .object({
    /** Environment values from valueFrom: container name (`main` for the single-image form) → variable → value. */
    env: z.record(z.string(), z.record(z.string(), z.string())).default({}),
    /** Files of configMap and secret volumes: volume name → relative path → base64 content. */
    files: z.record(z.string(), z.record(z.string(), z.string())).default({}),
    /** Registry credentials from imagePullSecrets. */
    registryAuth: z
      .array(z.object({ server: z.string(), username: z.string(), password: z.string() }).loose())
      .default([]),
  })
  .loose();
export const ResolvedValues = ResolvedValuesOfTemplate.extend({
  /** The values of older templates still run by some instances (`DeploymentIntent.revisions`), by hash. */
  revisions: z.record(z.string(), ResolvedValuesOfTemplate).optional(),
}).loose();
export type ResolvedValues = z.infer<typeof ResolvedValues>;

/**
 * Desired state of one Workload in one location, kept in the intents KV bucket under
 * `<location>.<namespace>.<workload>`. The agents of that location run the instances placed on them.
 */
export const DeploymentIntent = z
  .object({
    /** Schema version. */
    v: z.number().int(),
    /** Location this intent is for. */
    location: z.string(),
    /** Namespace of the Workload. */
    namespace: z.string(),
    /** Name of the Workload. */
    workload: z.string(),
    /** UID of the Workload, so a re-created Workload of the same name is told apart. */
    workloadUid: z.string().optional(),
    /** Hash of the template; an instance whose hash differs is replaced. */
    templateHash: z.string(),
    /** What each instance runs. */
    template: InstanceTemplateSpec,
    /** CPU and memory each instance gets as limits. */
    limits: ResourceAmounts,
    /** The instances of this location, each with its host. */
    instances: z.array(IntendedInstance),
    /** Older templates some instances still run during a rolling update (see `IntendedInstance.templateHash`). */
    revisions: z
      .array(
        z
          .object({
            /** Hash of the template. */
            templateHash: z.string(),
            /** What those instances run. */
            template: InstanceTemplateSpec,
            /** Their CPU and memory limits. */
            limits: ResourceAmounts,
          })
          .loose(),
      )
      .optional(),
    /**
     * Resolved Secret/ConfigMap values sealed to each host's public key: host name → sealed ResolvedValues.
     * Only hosts with instances in this intent get an entry.
     */
    sealed: z.record(z.string(), z.string()).optional(),
    /** Public curve key (`X…`) of the coordinator that sealed `sealed`; the agent needs it to open them. */
    sealer: z.string().optional(),
    /**
     * Fencing epoch of the coordinator that wrote it (see {@link IntentMarker}): an agent ignores a value whose
     * epoch is older than one it has seen. Absent (written before epochs): 0.
     */
    epoch: z.number().int().nonnegative().optional(),
    /** Identity of the coordinator that wrote it (its leader-election identity), for audits of the bucket. */
    writer: z.string().optional(),
    /**
     * Write counter of that coordinator within its epoch: (epoch, generation) of a key never goes back, so an
     * agent ignores an older value a restored bucket brings back.
     */
    generation: z.number().int().nonnegative().optional(),
    /** When the coordinator wrote it (RFC 3339). */
    updatedAt: z.string(),
  })
  .loose();
export type DeploymentIntent = z.infer<typeof DeploymentIntent>;

/**
 * The coordinator's word that a location's intents in the bucket are complete, under
 * `<location>._marker` of the intents bucket: written after the intents it lists, by the leader of `epoch`.
 * An agent removes instances only on the strength of a marker it trusts (present, of its installation, and
 * of an epoch no older than any it has seen); without one (a recreated or restored bucket) it removes nothing.
 */
export const IntentMarker = z
  .object({
    /** Schema version. */
    v: z.number().int(),
    /** Identity of the installation (the kube-system namespace's UID): another control plane is not trusted. */
    installation: z.string(),
    /** Fencing epoch of the leader that wrote it; it only grows (each new leader takes a higher one). */
    epoch: z.number().int().nonnegative(),
    /** Identity of the coordinator that wrote it. */
    writer: z.string(),
    /** Write counter within the epoch: an agent never trusts a marker older than one it has seen (a restored bucket). */
    generation: z.number().int().nonnegative().default(0),
    /** Every intent key of the location the coordinator holds: a listed key missing from the bucket was lost, not deleted. */
    keys: z.array(z.string()),
    /** When it was written (RFC 3339). */
    updatedAt: z.string(),
  })
  .loose();
export type IntentMarker = z.infer<typeof IntentMarker>;

/** The state of one instance as its agent sees it. */
export const ReportedInstance = z
  .object({
    /** Namespace of the Workload. */
    namespace: z.string(),
    /** Instance name. */
    name: z.string(),
    /** Workload name. */
    workload: z.string(),
    /** Template hash it runs. */
    templateHash: z.string().optional(),
    /** Lifecycle phase. */
    phase: InstancePhase,
    /** Whether it is ready to serve. */
    ready: z.boolean(),
    /** Runtime detail: runsc, qemu-kvm, qemu-tcg. */
    runtime: z.string().optional(),
    /** Runtime identifier (container ID, VM id). */
    providerID: z.string().optional(),
    /** Published ports. */
    ports: z
      .array(
        z.object({
          name: z.string().optional(),
          containerPort: z.number().int(),
          hostIP: z.string().optional(),
          hostPort: z.number().int().optional(),
        }),
      )
      .optional(),
    /** IP addresses. */
    ips: z.array(z.string()).optional(),
    /** Its interfaces on Networks, as programmed on the host. */
    interfaces: z.array(ReportedInterface).optional(),
    /** Per-container state. */
    containers: z.array(ContainerState).optional(),
    /** Human-readable detail, e.g. why it failed. */
    message: z.string().optional(),
    /** When it last started (RFC 3339). */
    startedAt: z.string().optional(),
    /**
     * Its CPU usage: the average in millicores over the agent's last window (agent/cpu-usage.ts). Absent from
     * agents before autoscaling and until a window has passed; the autoscaler treats it as a missing metric.
     */
    cpu: z
      .object({
        usageMillis: z.number().finite().min(0),
        windowMs: z.number().int().min(0),
      })
      .optional(),
  })
  .loose();
export type ReportedInstance = z.infer<typeof ReportedInstance>;

/**
 * What an agent publishes on `<prefix>.hosts.<host>.report`: at start, on every change, and as a heartbeat.
 * It is complete every time (level-triggered), so a lost message costs nothing but latency.
 */
export const HostReport = z
  .object({
    /** Schema version. */
    v: z.number().int(),
    /** Host name, unique in the installation. */
    host: z.string(),
    /** Location the host belongs to. */
    location: z.string(),
    /** Labels placement matches on: region, zone, provider, hostname, and operator-given ones. */
    labels: z.record(z.string(), z.string()),
    /** What the host has; `ephemeralStorageBytes`: size of the filesystem holding the agent's state directory. */
    capacity: HostResourceAmounts,
    /** What may be placed on it (capacity less reserved, or an operator override; disk: all of it). */
    allocatable: HostResourceAmounts,
    /** Runtimes that work here. */
    runtimes: z.array(Runtime),
    /** Version of edge-agent. */
    agentVersion: z.string(),
    /** When this agent process started (RFC 3339); a change means the agent restarted. */
    startedAt: z.string(),
    /** Sequence number, increasing within one agent process. */
    seq: z.number().int(),
    /** Heartbeat interval the agent uses, in milliseconds, so the coordinator can derive its TTL. */
    heartbeatMs: z.number().int(),
    /** Every instance the agent runs or was told to run. */
    instances: z.array(ReportedInstance),
    /**
     * Free disk in bytes (available to unprivileged users, like `df`) on the filesystem holding the agent's state
     * directory, re-read every minute. Only in reports: the Host object carries the size, so free-space jitter
     * never rewrites it.
     */
    ephemeralStorageFreeBytes: z.number().int().optional(),
    /**
     * The host's own conditions, as a Node's: `DiskPressure` (True while a write of the agent's state directory or
     * VM image cache fails — the message names what, where and why —, False otherwise). Mirrored on the Host.
     */
    conditions: z.array(Condition).optional(),
    /** Public nkeys curve key (`X…`) secret values for this host are sealed to; absent: none can be sent. */
    sealKey: z.string().optional(),
    /**
     * When the host's NATS credentials stop working (RFC 3339): the earliest of its user JWT's `exp` and its TLS
     * client certificate's notAfter. Absent: neither expires (enrollment-issued host JWTs carry no `exp`).
     */
    credentialsExpireAt: z.string().optional(),
    /**
     * Address other hosts reach this host's VXLAN endpoint on (`--overlay-address`); absent: the host cannot
     * carry Network attachments, and instances with one are not placed on it.
     */
    overlayAddress: z.string().optional(),
    /** When the report was made (RFC 3339). */
    time: z.string(),
  })
  .loose();
export type HostReport = z.infer<typeof HostReport>;

/** Parses a JSON message with a schema, or returns an error that names the bad field. */
export function decode<T extends z.ZodType>(schema: T, data: Uint8Array | string): z.infer<T> {
  const text = typeof data === 'string' ? data : new TextDecoder().decode(data);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`malformed message: not JSON (${(err as Error).message})`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new Error(`malformed message: ${formatIssues(parsed.error)}`);
  return parsed.data;
}

/** Serialises a message. */
export function encode(message: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(message));
}

/** `spec.template.image: expected string` style text for a zod error. */
export function formatIssues(error: z.ZodError, prefix = ''): string {
  return error.issues
    .map((i) => `${[prefix, ...i.path.map(String)].filter(Boolean).join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}

/** Host state as the coordinator derives it from heartbeats. */
export const HostFeedState = z.enum(['Ready', 'Disconnected', 'Lost']);

/**
 * Monitoring feed, `<prefix>.feed.hosts.<host>`: a host registered, changed capacity/labels/runtimes or state,
 * or was lost. Published on change, never per heartbeat; the last message per host is retained.
 */
export const HostFeed = z
  .object({
    /** Schema version. */
    v: z.number().int(),
    /** Always `host`. */
    kind: z.literal('host'),
    /** Host name. */
    host: z.string(),
    /** Location. */
    location: z.string(),
    /** Ready, Disconnected or Lost. */
    state: HostFeedState,
    /** Labels placement matches on. */
    labels: z.record(z.string(), z.string()),
    /** What may be placed on it. */
    allocatable: HostResourceAmounts,
    /** Runtimes that work there. */
    runtimes: z.array(z.string()),
    /** Instances it reports. */
    instances: z.number().int(),
    /** Version of its agent. */
    agentVersion: z.string(),
    /** Its last heartbeat when this message was made (RFC 3339); heartbeats alone publish nothing. */
    lastHeartbeat: z.string(),
    /** When this message was made (RFC 3339). */
    time: z.string(),
  })
  .loose();
export type HostFeed = z.infer<typeof HostFeed>;

/** Monitoring feed, `<prefix>.feed.instances.<namespace>.<name>`: an Instance changed phase, readiness or host. */
export const InstanceFeed = z
  .object({
    /** Schema version. */
    v: z.number().int(),
    /** Always `instance`. */
    kind: z.literal('instance'),
    /** Namespace. */
    namespace: z.string(),
    /** Instance name. */
    name: z.string(),
    /** Workload it belongs to. */
    workload: z.string(),
    /** Location and host it is placed on. */
    location: z.string(),
    host: z.string(),
    /** Phase (Pending, Starting, Running, Unknown, Failed, …); `Deleted` when the Instance is gone. */
    phase: z.string(),
    /** Ready to serve. */
    ready: z.boolean(),
    /** Human-readable detail. */
    message: z.string().optional(),
    /** When this message was made (RFC 3339). */
    time: z.string(),
  })
  .loose();
export type InstanceFeed = z.infer<typeof InstanceFeed>;

/** Monitoring feed, `<prefix>.feed.workloads.<namespace>.<name>`: a Workload's replicas or phase changed. */
export const WorkloadFeed = z
  .object({
    /** Schema version. */
    v: z.number().int(),
    /** Always `workload`. */
    kind: z.literal('workload'),
    /** Namespace. */
    namespace: z.string(),
    /** Workload name. */
    name: z.string(),
    /** spec.replicas (desired). */
    desired: z.number().int(),
    /** status.replicas / readyReplicas / availableReplicas. */
    replicas: z.number().int(),
    readyReplicas: z.number().int(),
    availableReplicas: z.number().int(),
    /** status.phase; `Deleted` when the Workload is gone. */
    phase: z.string(),
    /** When this message was made (RFC 3339). */
    time: z.string(),
  })
  .loose();
export type WorkloadFeed = z.infer<typeof WorkloadFeed>;

/** Monitoring feed, `<prefix>.events.<namespace>.<kind>.<name>`: every event the coordinator records. */
export const EventFeed = z
  .object({
    /** Schema version. */
    v: z.number().int(),
    /** Always `event`. */
    kind: z.literal('event'),
    /** Normal or Warning. */
    type: z.string(),
    /** CamelCase reason, e.g. Placed, Rescheduled, HostLost. */
    reason: z.string(),
    /** Human-readable message. */
    message: z.string(),
    /** The object it is about. */
    object: z.object({ kind: z.string(), name: z.string(), namespace: z.string().optional() }).loose(),
    /** How often it happened. */
    count: z.number().int(),
    /** When it happened (RFC 3339). */
    time: z.string(),
  })
  .loose();
export type EventFeed = z.infer<typeof EventFeed>;

/** Any message of the monitoring feed. */
export const FeedMessage = z.discriminatedUnion('kind', [HostFeed, InstanceFeed, WorkloadFeed, EventFeed]);
export type FeedMessage = z.infer<typeof FeedMessage>;
