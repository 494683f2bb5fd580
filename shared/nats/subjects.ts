/**
 * Every NATS subject and bucket Edgeplane uses, built in one place so that publishers, subscribers,
 * permissions and docs cannot drift apart. All subjects start with a prefix (default `edge`) so several
 * installations can share one NATS system.
 */

/** Default subject prefix. */
export const DEFAULT_PREFIX = 'edge';

/** NATS subject tokens may not contain these; names from Kubernetes never do except `.`. */
function token(value: string): string {
  if (!value || /[\s*>]/.test(value))
    throw new Error(`not usable in a NATS subject: ${JSON.stringify(value)}`);
  return value;
}

/** The subjects and buckets of one installation. */
export class Subjects {
  constructor(
    /** Prefix of every subject, e.g. `edge`. */
    readonly prefix: string = DEFAULT_PREFIX,
  ) {
    token(prefix);
  }

  /** JetStream KV bucket holding one deployment intent per (location, Workload). Writer: coordinator. */
  get intentsBucket(): string {
    return `${this.prefix.replace(/\./g, '_')}-intents`;
  }

  /** Key of a deployment intent: `<location>.<namespace>.<workload>`. */
  intentKey(location: string, namespace: string, workload: string): string {
    return `${token(location)}.${token(namespace)}.${token(workload)}`;
  }

  /**
   * Key of a location's {@link IntentMarker}: `<location>._marker` (two tokens and an underscore, so never an
   * intent's key). Inside the location's filter, so its agents may read it.
   */
  intentMarkerKey(location: string): string {
    return `${token(location)}._marker`;
  }

  /** Key of the writers' fence in the intents bucket (the current leader's epoch); agents never read it. */
  get intentFenceKey(): string {
    return '_fence';
  }

  /**
   * Whether a key of the intents bucket is a deployment intent's: not the writers' fence, not a location's marker
   * (both live in the same bucket).
   */
  isIntentKey(key: string): boolean {
    return key !== this.intentFenceKey && !key.endsWith('._marker') && key.split('.').length >= 3;
  }

  /** Filter an agent watches: every intent of its location. */
  intentFilter(location: string): string {
    return `${token(location)}.>`;
  }

  /**
   * JetStream KV bucket holding the Network segments each location needs (the NetworkSegment peer lists of messages.ts),
   * under `<location>.<segment>`. Writer: coordinator; each agent reads its own location's keys.
   */
  get segmentsBucket(): string {
    return `${this.prefix.replace(/\./g, '_')}-segments`;
  }

  /**
   * JetStream KV bucket of the Instances when the coordinator serves them itself (`--instances-api=aggregated`):
   * one key per Instance, `<namespace>.<name>`, the object as JSON. Coordinator only; no agent reads it.
   */
  get instancesBucket(): string {
    return `${this.prefix.replace(/\./g, '_')}-instances`;
  }

  /**
   * JetStream KV bucket of the coordinator's IPAM claims (segment ids, address blocks, addresses), each made with
   * create-if-absent. Coordinator only; no agent reads it.
   */
  get ipamBucket(): string {
    return `${this.prefix.replace(/\./g, '_')}-ipam`;
  }

  /** Key filter of one location's segments (what its agents may read). */
  segmentFilter(location: string): string {
    return `${token(location)}.>`;
  }

  /** Key of a segment's peer list for one location: `<location>.<segment>`. */
  segmentKey(location: string, segment: number): string {
    return `${token(location)}.${segment}`;
  }

  /** Where an agent publishes its host report (heartbeat with capacity and instance states). */
  hostReport(host: string): string {
    return `${this.prefix}.hosts.${token(host)}.report`;
  }

  /** Wildcard the coordinator subscribes to for every host report. */
  get allHostReports(): string {
    return `${this.prefix}.hosts.*.report`;
  }

  /** Monitoring feed: host registered, changed capacity or state, lost. */
  feedHost(host: string): string {
    return `${this.prefix}.feed.hosts.${token(host)}`;
  }

  /** Monitoring feed: an instance changed state. */
  feedInstance(namespace: string, name: string): string {
    return `${this.prefix}.feed.instances.${token(namespace)}.${token(name)}`;
  }

  /** Monitoring feed: a Workload's status changed. */
  feedWorkload(namespace: string, name: string): string {
    return `${this.prefix}.feed.workloads.${token(namespace)}.${token(name)}`;
  }

  /** Monitoring feed: an event (placed, unschedulable, started, failed, …). */
  feedEvent(namespace: string, kind: string, name: string): string {
    return `${this.prefix}.events.${token(namespace)}.${token(kind)}.${token(name)}`;
  }

  /** Wildcard of the whole monitoring feed. */
  get allFeed(): string {
    return `${this.prefix}.feed.>`;
  }

  /** Wildcard of the host part of the feed. */
  get allFeedHosts(): string {
    return `${this.prefix}.feed.hosts.>`;
  }

  /** Wildcard of the instance part of the feed. */
  get allFeedInstances(): string {
    return `${this.prefix}.feed.instances.>`;
  }

  /** Wildcard of the Workload part of the feed. */
  get allFeedWorkloads(): string {
    return `${this.prefix}.feed.workloads.>`;
  }

  /** Wildcard of every event. */
  get allEvents(): string {
    return `${this.prefix}.events.>`;
  }

  /** JetStream stream retaining the last feed message per subject (current state for a new subscriber). */
  get feedStream(): string {
    return `${this.prefix.replace(/\./g, '_')}-feed`;
  }

  /** JetStream stream retaining recent events (one hour). */
  get eventsStream(): string {
    return `${this.prefix.replace(/\./g, '_')}-events`;
  }

  /** Status endpoint of the coordinator (NATS services API endpoint, request/reply). */
  get coordinatorStatus(): string {
    return `${this.prefix}.svc.coordinator.status`;
  }

  /** Status endpoint of one agent (NATS services API endpoint, request/reply). */
  agentStatus(host: string): string {
    return `${this.prefix}.svc.agent.${token(host)}.status`;
  }

  /**
   * An operator action on one host's agent (`logs`, `exec`, or `next` to pull a session's output), requested by
   * operator `caller`. The caller's name is the subject's last token: operator credentials may publish only on
   * subjects ending in their own name, so the server vouches for it (see docs/nats.md, "Logs and exec").
   */
  opsRequest(host: string, op: OpsAction, caller: string): string {
    return `${this.prefix}.ops.${token(host)}.${op}.${token(caller)}`;
  }

  /** What an agent's `op` endpoint listens on: any caller. */
  opsEndpoint(host: string, op: OpsAction): string {
    return `${this.prefix}.ops.${token(host)}.${op}.*`;
  }

  /** Every action an operator named `caller` may request, on any host (a permission, not a subscription). */
  opsOf(caller: string, op: OpsAction): string {
    return `${this.prefix}.ops.*.${op}.${token(caller)}`;
  }

  /** Where an agent asks the coordinator to record an operator action (an exec) as a Kubernetes Event. */
  hostAudit(host: string): string {
    return `${this.prefix}.hosts.${token(host)}.audit`;
  }

  /** Wildcard the coordinator subscribes to for every host's audit records. */
  get allHostAudits(): string {
    return `${this.prefix}.hosts.*.audit`;
  }

  /** KV bucket of the enrollment service: join tokens (`tokens.<id>`) and enrolled hosts (`hosts.<host>`). */
  get enrollBucket(): string {
    return `${this.prefix.replace(/\./g, '_')}-enroll`;
  }

  /** Where a host joining with token `id` asks for its credentials (only that token's bearer may publish). */
  join(tokenId: string): string {
    return `${this.prefix}.enroll.join.${token(tokenId)}`;
  }

  /** Wildcard the enrollment service answers on. */
  get allJoins(): string {
    return `${this.prefix}.enroll.join.*`;
  }

  /** Inbox prefix of a joining host, so its token may subscribe to its own replies only. */
  joinInbox(tokenId: string): string {
    return `_INBOX.join.${token(tokenId)}`;
  }

  /** Administrative requests to the enrollment service (`tokens.create`, `hosts.revoke`, …): admin identity only. */
  admin(operation: string): string {
    return `${this.prefix}.admin.${token(operation)}`;
  }

  /** Wildcard of every administrative request. */
  get allAdmin(): string {
    return `${this.prefix}.admin.>`;
  }
}

/** Operator actions an agent serves: start a logs or exec session, and pull its next output. */
export const OPS_ACTIONS = ['logs', 'exec', 'next'] as const;
export type OpsAction = (typeof OPS_ACTIONS)[number];
