/** How edgectl prints: aligned tables and one human-readable line per feed message. */
import type { FeedMessage } from '../shared/nats/messages.js';

/** Columns padded to the widest cell, three spaces apart (kubectl style). */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('   ')
        .trimEnd(),
    )
    .join('\n');
}

/** Bytes as Gi with one decimal. */
export const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)}Gi`;

/** `HH:MM:SS` of an RFC 3339 time. */
function clock(time: string): string {
  return time.slice(11, 19);
}

/** One line for a feed message, e.g. `12:00:01 workload default/web 3/3 ready Running`. */
export function feedLine(m: FeedMessage): string {
  switch (m.kind) {
    case 'host':
      return `${clock(m.time)}  host      ${m.host} (${m.location})  ${m.state}  cpu ${m.allocatable.cpuMillis}m  memory ${gib(m.allocatable.memoryBytes)}${m.allocatable.ephemeralStorageBytes === undefined ? '' : `  disk ${gib(m.allocatable.ephemeralStorageBytes)}`}  ${m.instances} instance(s)`;
    case 'instance':
      return `${clock(m.time)}  instance  ${m.namespace}/${m.name}  ${m.phase}${m.ready ? ' ready' : ''}  on ${m.host} (${m.location})${m.message ? `  ${m.message}` : ''}`;
    case 'workload':
      return `${clock(m.time)}  workload  ${m.namespace}/${m.name}  replicas ${m.replicas}/${m.desired}  ready ${m.readyReplicas}  available ${m.availableReplicas}  ${m.phase}`;
    case 'event':
      return `${clock(m.time)}  event     ${m.type} ${m.reason}  ${m.object.kind} ${m.object.namespace ? `${m.object.namespace}/` : ''}${m.object.name}: ${m.message}`;
  }
}
