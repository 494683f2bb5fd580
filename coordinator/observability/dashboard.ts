/**
 * The live dashboard's data: a snapshot of the fleet read from the running coordinator when a browser
 * connects, then every monitoring-feed message (hosts, instances, Workloads, events — what `edgectl watch`
 * follows on NATS) pushed to it as a Server-Sent Event. Host messages are completed with what the feed does not
 * carry (capacity, allocation) from the registry, and an instance change re-sends its host's row (allocation
 * moved). Nothing is polled: a browser sees a change as soon as the feed does.
 *
 * SSE events: `snapshot` ({@link FleetSnapshot}), `host` ({@link HostView}), `instance`, `workload`, `event`
 * (the feed's own messages). A comment line every 15 s keeps proxies from closing an idle stream.
 */
import type { ServerResponse } from 'node:http';
import type { Subscription } from '@nats-io/transport-node';
import type { Logger } from '../../shared/log.js';
import { decode, type EventFeed, FeedMessage } from '../../shared/nats/messages.js';
import type { HostEntry } from '../hosts/registry.js';
import type { CoordinatorRole } from './health.js';
import type { FleetSource } from './source.js';

/** A host row. */
export interface HostView {
  host: string;
  location: string;
  state: string;
  agentVersion: string;
  /** Last report (RFC 3339). */
  lastHeartbeat: string;
  capacity: { cpuMillis: number; memoryBytes: number };
  allocatable: { cpuMillis: number; memoryBytes: number };
  allocated: { cpuMillis: number; memoryBytes: number };
  instances: number;
}

/** What a browser receives first. */
export interface FleetSnapshot {
  role: CoordinatorRole;
  hosts: HostView[];
  workloads: Array<{
    namespace: string;
    name: string;
    desired: number;
    readyReplicas: number;
    phase: string;
  }>;
  instances: Array<{
    namespace: string;
    name: string;
    workload: string;
    location: string;
    host: string;
    phase: string;
    ready: boolean;
    message?: string;
  }>;
  /** The latest events, oldest first. */
  events: EventFeed[];
}

/** Events kept for browsers that connect later. */
const KEPT_EVENTS = 300;

export function hostView(e: HostEntry, source: Pick<FleetSource, 'allocatedOf'>): HostView {
  const r = e.report;
  const a = source.allocatedOf(r.host);
  return {
    host: r.host,
    location: r.location,
    state: e.state,
    agentVersion: r.agentVersion,
    lastHeartbeat: new Date(e.lastSeen).toISOString(),
    capacity: { cpuMillis: r.capacity.cpuMillis, memoryBytes: r.capacity.memoryBytes },
    allocatable: { cpuMillis: r.allocatable.cpuMillis, memoryBytes: r.allocatable.memoryBytes },
    allocated: a.allocated,
    instances: a.instances,
  };
}

/** The fleet as the source has it now. */
export function fleetSnapshot(
  role: CoordinatorRole,
  source: FleetSource | undefined,
  events: EventFeed[],
): FleetSnapshot {
  if (!source) return { role, hosts: [], workloads: [], instances: [], events };
  return {
    role,
    hosts: source.hosts.all().map((e) => hostView(e, source)),
    workloads: source.workloads().map(({ object: w }) => {
      const replicas = (w.spec as { replicas?: unknown } | undefined)?.replicas;
      return {
        namespace: w.metadata.namespace ?? 'default',
        name: w.metadata.name ?? '',
        desired: typeof replicas === 'number' ? replicas : 0,
        readyReplicas: w.status?.readyReplicas ?? 0,
        phase: w.status?.phase ?? 'Pending',
      };
    }),
    instances: source.instances().map((i) => ({
      namespace: i.metadata.namespace ?? 'default',
      name: i.metadata.name ?? '',
      workload: i.spec.workloadRef.name,
      location: i.spec.location,
      host: i.spec.host,
      phase: i.status?.phase ?? 'Pending',
      ready: i.status?.ready ?? false,
      ...(i.status?.message ? { message: i.status.message } : {}),
    })),
    events,
  };
}

export class DashboardFeed {
  private clients = new Set<ServerResponse>();
  private events: EventFeed[] = [];
  private subs: Subscription[] = [];
  private source: FleetSource | undefined;
  private role: CoordinatorRole = 'starting';
  private readonly keepAlive: NodeJS.Timeout;
  /** Feed messages skipped because they did not decode (a newer or broken publisher; exported as a metric). */
  malformed = 0;

  constructor(private readonly log: Logger) {
    this.keepAlive = setInterval(() => this.write(': keep-alive\n\n'), 15_000);
    this.keepAlive.unref();
  }

  /** Follows the feed of a coordinator that now leads; browsers get a fresh snapshot. */
  attach(source: FleetSource, role: CoordinatorRole): void {
    this.detach();
    this.source = source;
    this.role = role;
    for (const subject of [source.subjects.allFeed, source.subjects.allEvents]) {
      const state = subject === source.subjects.allFeed;
      this.subs.push(
        source.nc.subscribe(subject, {
          callback: (err, msg) => {
            if (err) return;
            // Nobody watching: state messages are not even decoded (forward drops them; a browser that connects
            // gets the snapshot). Decoding every feed message with zod was about a fifth of the cost of the
            // heartbeat path at 200 hosts (bench:control-plane --profile). Events are kept for late browsers.
            if (state && this.clients.size === 0) return;
            try {
              this.forward(decode(FeedMessage, msg.data));
            } catch (e) {
              this.malformed++;
              this.log.debug({ subject: msg.subject, err: (e as Error).message }, 'feed message skipped');
            }
          },
        }),
      );
    }
    this.broadcastSnapshot();
  }

  /** Stops following (the coordinator stopped or lost the Lease). */
  detach(role?: CoordinatorRole): void {
    for (const s of this.subs.splice(0)) s.unsubscribe();
    this.source = undefined;
    if (role) {
      this.role = role;
      this.broadcastSnapshot();
    }
  }

  setRole(role: CoordinatorRole): void {
    if (role === this.role) return;
    this.role = role;
    this.broadcastSnapshot();
  }

  snapshot(): FleetSnapshot {
    return fleetSnapshot(this.role, this.source, this.events);
  }

  /** Serves one browser: headers, the snapshot, then every change until it goes away. */
  serve(res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    res.write(sse('snapshot', this.snapshot()));
    this.clients.add(res);
    res.on('close', () => this.clients.delete(res));
  }

  close(): void {
    clearInterval(this.keepAlive);
    this.detach();
    for (const c of this.clients) c.end();
    this.clients.clear();
  }

  private forward(m: FeedMessage): void {
    const source = this.source;
    if (m.kind === 'event') {
      this.events.push(m);
      if (this.events.length > KEPT_EVENTS) this.events.splice(0, this.events.length - KEPT_EVENTS);
      this.write(sse('event', m));
      return;
    }
    // Nobody watching: a browser that connects gets the snapshot, so the rows need not be built (at 1,000 hosts
    // this was about 6 % of the coordinator's busy time in steady state).
    if (this.clients.size === 0) return;
    if (m.kind === 'host') {
      const entry = source?.hosts.get(m.host);
      // The registry is at least as new as the feed message; its row adds capacity and allocation.
      this.write(sse('host', entry && source ? { ...hostView(entry, source), state: m.state } : m));
      return;
    }
    this.write(sse(m.kind, m));
    if (m.kind === 'instance' && source) {
      const entry = source.hosts.get(m.host);
      if (entry) this.write(sse('host', hostView(entry, source)));
    }
  }

  private broadcastSnapshot(): void {
    if (this.clients.size) this.write(sse('snapshot', this.snapshot()));
  }

  private write(chunk: string): void {
    for (const c of this.clients) c.write(chunk);
  }
}

function sse(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
