/**
 * What the fleet really does, seen from outside the coordinator: every host report read straight from NATS (so
 * it keeps counting while the coordinator is cut off, paused or killed) and the instances' containers read from
 * Docker. The partition, clock, flapping and kill scenarios (issue 14) measure their figures with it: how long a
 * host was really silent, how many replicas of a namespace were ready at each moment, which containers ran.
 */
import { connect } from '@nats-io/transport-node';
import { docker } from '../../deploy/stack/index.js';
import { decode, HostReport } from '../../shared/nats/messages.js';
import { Subjects } from '../../shared/nats/subjects.js';
import { cleanup } from './index.js';

/** One host as its reports show it. */
export interface WatchedHost {
  /** When its last report arrived (test clock, ms). */
  lastAt: number;
  /** Longest gap between two of its reports so far (ms). */
  maxGapMs: number;
  /** Its last report. */
  report: HostReport;
}

/** A running watch. */
export interface FleetWatch {
  /** Hosts by name. */
  readonly hosts: Map<string, WatchedHost>;
  /** Ready instances of `namespace` over all hosts, by their last reports (one per instance name). */
  ready(namespace: string): number;
  /** Longest gap between two reports of `host` since {@link resetGaps} (ms), the current silence included. */
  maxGapMs(host: string): number;
  /** Starts counting gaps afresh (e.g. when a fault begins). */
  resetGaps(): void;
  /** Every gap between two reports of `host` longer than 3 s so far, with the current silence when it is one. */
  gaps(host: string): { from: number; to: number }[];
  /** Stops watching. */
  close(): Promise<void>;
}

/** Subscribes to every host report on `natsUrl` (closed after the test or file); `tls`: PEM files for TLS. */
export async function watchFleet(
  natsUrl: string,
  tls?: { ca: string; clientCert: string; clientKey: string },
): Promise<FleetWatch> {
  const nc = await connect({
    servers: natsUrl,
    ...(tls ? { tls: { caFile: tls.ca, certFile: tls.clientCert, keyFile: tls.clientKey } } : {}),
  });
  const hosts = new Map<string, WatchedHost>();
  const gapLog = new Map<string, { from: number; to: number }[]>();
  nc.subscribe(new Subjects().allHostReports, {
    callback: (err, msg) => {
      if (err) return;
      let report: HostReport;
      try {
        report = decode(HostReport, msg.data);
      } catch {
        return;
      }
      const now = Date.now();
      const prev = hosts.get(report.host);
      const gap = prev ? now - prev.lastAt : 0;
      if (prev && gap > 3000) {
        const log = gapLog.get(report.host) ?? [];
        log.push({ from: prev.lastAt, to: now });
        gapLog.set(report.host, log);
      }
      hosts.set(report.host, { lastAt: now, maxGapMs: Math.max(prev?.maxGapMs ?? 0, gap), report });
    },
  });
  const watch: FleetWatch = {
    hosts,
    ready(namespace) {
      const names = new Set<string>();
      for (const h of hosts.values())
        for (const i of h.report.instances)
          if (i.namespace === namespace && i.ready && i.phase === 'Running') names.add(i.name);
      return names.size;
    },
    maxGapMs(host) {
      const h = hosts.get(host);
      return h ? Math.max(h.maxGapMs, Date.now() - h.lastAt) : Number.POSITIVE_INFINITY;
    },
    gaps(host) {
      const h = hosts.get(host);
      const done = gapLog.get(host) ?? [];
      return h && Date.now() - h.lastAt > 3000 ? [...done, { from: h.lastAt, to: Date.now() }] : [...done];
    },
    resetGaps() {
      for (const h of hosts.values()) h.maxGapMs = 0;
    },
    close: () => nc.close(),
  };
  cleanup(() => watch.close());
  return watch;
}

/** Ids of the running containers Edgeplane's agent of `host` made (label edgeplane.dev/host). */
export async function runningContainers(host: string): Promise<string[]> {
  const r = await docker(['ps', '-q', '--no-trunc', '--filter', `label=edgeplane.dev/host=${host}`]);
  return r.stdout.split('\n').filter(Boolean).sort();
}
