#!/usr/bin/env node
/** edgectl: the operator's view of an Edgeplane installation over NATS. */
import { Command } from 'commander';
import { connect } from '@nats-io/transport-node';
import { decode, HostReport } from '../shared/nats/messages.js';
import { Subjects } from '../shared/nats/subjects.js';

const program = new Command('edgectl')
  .description('Edgeplane operator CLI: look at hosts and instances as the agents report them over NATS.')
  .version('0.1.0')
  .option('--nats <urls>', 'NATS server URLs [EDGE_NATS_URL]', process.env.EDGE_NATS_URL ?? 'nats://127.0.0.1:4222')
  .option('--subject-prefix <prefix>', 'subject prefix [EDGE_SUBJECT_PREFIX]', process.env.EDGE_SUBJECT_PREFIX ?? 'edge');

interface Global {
  nats: string;
  subjectPrefix: string;
}

/** Collects host reports for a while (every agent reports at least once a heartbeat). */
async function collectReports(g: Global, waitMs: number): Promise<Map<string, HostReport>> {
  const nc = await connect({ servers: g.nats.split(','), name: 'edgectl' });
  const subjects = new Subjects(g.subjectPrefix);
  const reports = new Map<string, HostReport>();
  const sub = nc.subscribe(subjects.allHostReports);
  const timer = setTimeout(() => sub.unsubscribe(), waitMs);
  for await (const m of sub) {
    try {
      const r = decode(HostReport, m.data);
      reports.set(r.host, r);
    } catch {
      // not ours to judge here
    }
  }
  clearTimeout(timer);
  await nc.close();
  return reports;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('   ').trimEnd()).join('\n');
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)}Gi`;

program
  .command('hosts')
  .description('list hosts as they report themselves (waits one heartbeat)')
  .option('--wait <ms>', 'how long to listen for reports', '6000')
  .option('-o, --output <format>', 'table or json', 'table')
  .action(async (opts: { wait: string; output: string }) => {
    const reports = [...(await collectReports(program.opts<Global>(), Number(opts.wait))).values()].sort((a, b) =>
      a.host.localeCompare(b.host),
    );
    if (opts.output === 'json') return console.log(JSON.stringify(reports, null, 2));
    console.log(
      table([
        ['HOST', 'LOCATION', 'RUNTIMES', 'CPU', 'MEMORY', 'INSTANCES', 'AGENT'],
        ...reports.map((r) => [
          r.host,
          r.location,
          r.runtimes.join(',') || '-',
          `${r.allocatable.cpuMillis}m`,
          gib(r.allocatable.memoryBytes),
          String(r.instances.length),
          r.agentVersion,
        ]),
      ]),
    );
  });

program
  .command('instances')
  .description('list instances as the hosts report them (waits one heartbeat)')
  .option('--wait <ms>', 'how long to listen for reports', '6000')
  .option('-o, --output <format>', 'table or json', 'table')
  .action(async (opts: { wait: string; output: string }) => {
    const reports = await collectReports(program.opts<Global>(), Number(opts.wait));
    const rows = [...reports.values()].flatMap((r) => r.instances.map((i) => ({ host: r.host, location: r.location, ...i })));
    rows.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
    if (opts.output === 'json') return console.log(JSON.stringify(rows, null, 2));
    console.log(
      table([
        ['NAMESPACE', 'NAME', 'WORKLOAD', 'HOST', 'PHASE', 'READY', 'PORTS'],
        ...rows.map((i) => [
          i.namespace,
          i.name,
          i.workload,
          i.host,
          i.phase,
          String(i.ready),
          (i.ports ?? []).map((p) => `${p.hostIP}:${p.hostPort}->${p.containerPort}`).join(',') || '-',
        ]),
      ]),
    );
  });

await program.parseAsync(process.argv);
