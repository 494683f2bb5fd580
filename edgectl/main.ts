#!/usr/bin/env node
/** edgectl: the operator's view of an Edgeplane installation over NATS. This file only wires commands. */
import { basename } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { Command } from 'commander';
import { connectNats } from '../shared/nats/connect.js';
import type { FeedMessage, HostFeed, InstanceFeed, WorkloadFeed } from '../shared/nats/messages.js';
import { Subjects } from '../shared/nats/subjects.js';
import { VERSION } from '../shared/version.js';
import { generateIdentity, type IdentityRole, writeIdentity, writeOperatorCreds } from './credentials.js';
import { addEnrollmentCommands } from './enroll-commands.js';
import { feedSnapshot, followFeed } from './feed.js';
import { feedLine, gib, table } from './format.js';
import { addOpsCommands } from './ops-commands.js';

// Installed as kubectl-edge too (kubectl's plugin convention): then it is `kubectl edge …`.
const asPlugin = /^kubectl-edge(\.js)?$/.test(basename(process.argv[1] ?? ''));
const program = new Command(asPlugin ? 'kubectl edge' : 'edgectl')
  .description(
    'Edgeplane operator CLI: hosts, instances and Workloads as the coordinator publishes them over NATS.',
  )
  .version(VERSION)
  .option(
    '--nats <urls>',
    'NATS server URLs [EDGE_NATS_URL]',
    process.env.EDGE_NATS_URL ?? 'nats://127.0.0.1:4222',
  )
  .option(
    '--subject-prefix <prefix>',
    'subject prefix [EDGE_SUBJECT_PREFIX]',
    process.env.EDGE_SUBJECT_PREFIX ?? 'edge',
  )
  .option('--creds <file>', 'NATS credentials (.creds or nkey seed) [EDGE_NATS_CREDS]')
  .option('--ca <file>', 'CA of the NATS server certificate (turns TLS on) [EDGE_NATS_CA]');

interface Global {
  nats: string;
  subjectPrefix: string;
  creds?: string;
  ca?: string;
}

async function connectGlobal(): Promise<{ nc: NatsConnection; subjects: Subjects; creds?: string }> {
  const g = program.opts<Global>();
  const creds = g.creds ?? process.env.EDGE_NATS_CREDS;
  const nc = await connectNats({
    servers: g.nats.split(',').map((s) => s.trim()),
    name: 'edgectl',
    reconnectForever: false,
    ...(g.creds ? { creds: g.creds } : {}),
    ...(g.ca ? { ca: g.ca } : {}),
  });
  return { nc, subjects: new Subjects(g.subjectPrefix), ...(creds ? { creds } : {}) };
}

function outputOption(cmd: Command): Command {
  return cmd.option('-o, --output <format>', 'table or json', 'table');
}

function checkOutput(output: string): void {
  if (output !== 'table' && output !== 'json')
    throw new Error(`--output: expected table or json, got ${output}`);
}

async function snapshot<T extends FeedMessage>(filter: (s: Subjects) => string): Promise<T[]> {
  const { nc, subjects } = await connectGlobal();
  try {
    return (await feedSnapshot(nc, subjects, filter(subjects))) as T[];
  } finally {
    await nc.close();
  }
}

const ago = (time: string) => `${Math.max(0, Math.round((Date.now() - Date.parse(time)) / 1000))}s`;

const hostsCommand = outputOption(
  program.command('hosts').description('list hosts: state, capacity, instances (from the feed)'),
);
hostsCommand.action(async (opts: { output: string }) => {
  checkOutput(opts.output);
  const hosts = (await snapshot<HostFeed>((s) => s.allFeedHosts)).sort((a, b) =>
    a.host.localeCompare(b.host),
  );
  if (opts.output === 'json') return console.log(JSON.stringify(hosts, null, 2));
  console.log(
    table([
      ['HOST', 'LOCATION', 'STATE', 'RUNTIMES', 'CPU', 'MEMORY', 'DISK', 'INSTANCES', 'AGENT', 'CHANGED'],
      ...hosts.map((h) => [
        h.host,
        h.location,
        h.state,
        h.runtimes.join(',') || '-',
        `${h.allocatable.cpuMillis}m`,
        gib(h.allocatable.memoryBytes),
        h.allocatable.ephemeralStorageBytes === undefined ? '-' : gib(h.allocatable.ephemeralStorageBytes),
        String(h.instances),
        h.agentVersion,
        `${ago(h.lastHeartbeat)} ago`,
      ]),
    ]),
  );
});

outputOption(
  program
    .command('instances')
    .description('list instances: phase, readiness, host (from the feed)')
    .option('-n, --namespace <namespace>', 'only this namespace'),
).action(async (opts: { output: string; namespace?: string }) => {
  checkOutput(opts.output);
  const rows = (await snapshot<InstanceFeed>((s) => s.allFeedInstances))
    .filter((i) => i.phase !== 'Deleted' && (!opts.namespace || i.namespace === opts.namespace))
    .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  if (opts.output === 'json') return console.log(JSON.stringify(rows, null, 2));
  console.log(
    table([
      ['NAMESPACE', 'NAME', 'WORKLOAD', 'LOCATION', 'HOST', 'PHASE', 'READY'],
      ...rows.map((i) => [i.namespace, i.name, i.workload, i.location, i.host, i.phase, String(i.ready)]),
    ]),
  );
});

outputOption(
  program.command('workloads').description('list Workloads: replicas, readiness, phase (from the feed)'),
).action(async (opts: { output: string }) => {
  checkOutput(opts.output);
  const rows = (await snapshot<WorkloadFeed>((s) => s.allFeedWorkloads)).filter((w) => w.phase !== 'Deleted');
  if (opts.output === 'json') return console.log(JSON.stringify(rows, null, 2));
  console.log(
    table([
      ['NAMESPACE', 'NAME', 'DESIRED', 'REPLICAS', 'READY', 'AVAILABLE', 'PHASE'],
      ...rows.map((w) => [
        w.namespace,
        w.name,
        String(w.desired),
        String(w.replicas),
        String(w.readyReplicas),
        String(w.availableReplicas),
        w.phase,
      ]),
    ]),
  );
});

outputOption(
  program.command('watch').description('follow hosts, instances, Workloads and events live (Ctrl-C to stop)'),
).action(async (opts: { output: string }) => {
  checkOutput(opts.output);
  const { nc, subjects } = await connectGlobal();
  followFeed(
    nc,
    subjects,
    (m) => console.log(opts.output === 'json' ? JSON.stringify(m) : feedLine(m)),
    (subject, err) => console.error(`edgectl: skipped a message on ${subject}: ${err}`),
  );
  await nc.flush();
  console.error(`edgectl: watching ${subjects.allFeed} and ${subjects.allEvents}`);
  const stop = () => void nc.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await nc.closed();
});

program
  .command('status')
  .description("the coordinator's status (NATS services endpoint)")
  .action(async () => {
    const { nc, subjects } = await connectGlobal();
    try {
      const r = await nc.request(subjects.coordinatorStatus, '', { timeout: 5000 });
      console.log(JSON.stringify(r.json(), null, 2));
    } finally {
      await nc.close();
    }
  });

addOpsCommands(program, connectGlobal);

const credentials = program
  .command('credentials')
  .description(
    'generate NATS credentials (nkey user + nats-server authorization entry with its permissions)',
  );

credentials
  .command('host <host>')
  .description('credentials for a new host: its agent may read only its location and publish only as itself')
  .requiredOption('--location <location>', 'location of the host')
  .option('--out <dir>', 'directory for <host>.nk and <host>.conf', '.')
  .action((host: string, opts: { location: string; out: string }) =>
    emit({ role: 'host', host, location: opts.location }, opts.out),
  );

credentials
  .command('coordinator')
  .description('credentials for the coordinator')
  .option('--out <dir>', 'directory for coordinator.nk and coordinator.conf', '.')
  .action((opts: { out: string }) => emit({ role: 'coordinator' }, opts.out));

credentials
  .command('monitor')
  .description('credentials for edgectl and monitoring tools: read the feed only')
  .option('--out <dir>', 'directory for monitor.nk and monitor.conf', '.')
  .action((opts: { out: string }) => emit({ role: 'monitor' }, opts.out));

credentials
  .command('operator <name>')
  .description(
    'credentials for a person or tool that may read logs and exec into instances (named in the exec Events)',
  )
  .option('--out <dir>', 'directory for <name>.nk and <name>.conf (or <name>.creds)', '.')
  .option(
    '--enroll-keys <file>',
    'operator mode: sign a user JWT (<name>.creds) with these keys (edgectl nats init)',
  )
  .action(async (name: string, opts: { out: string; enrollKeys?: string }) => {
    if (!opts.enrollKeys) return emit({ role: 'operator', name }, opts.out);
    const subjects = new Subjects(program.opts<Global>().subjectPrefix);
    const file = await writeOperatorCreds(opts.out, opts.enrollKeys, subjects, name);
    console.log(`wrote ${file} (secret: give it to ${name} only, mode 0600)`);
    console.log(
      `then: edgectl --creds ${file} logs <instance>   (or kubectl edge …; EDGE_NATS_CREDS=${file})`,
    );
  });

function emit(who: IdentityRole, out: string): void {
  const g = program.opts<Global>();
  const subjects = new Subjects(g.subjectPrefix);
  const id = generateIdentity(subjects, who);
  const files = writeIdentity(out, id);
  console.log(
    `wrote ${files.seedFile} (secret: give it to the ${id.name === 'monitor' ? 'monitoring tool' : id.name} only, mode 0600)`,
  );
  console.log(
    `wrote ${files.configFile}: add this entry to authorization.users of nats-server and reload it:\n`,
  );
  console.log(id.userConfig);
  if (who.role === 'operator') {
    console.log(
      `\nthen: edgectl --creds ${files.seedFile} logs <instance>   (or kubectl edge …; EDGE_NATS_CREDS=${files.seedFile})`,
    );
  }
  if (who.role === 'host') {
    console.log(
      `\nthen start the agent with: edge-agent --host ${who.host} --location ${who.location} --nats-creds ${files.seedFile}`,
    );
  }
}

addEnrollmentCommands(program, hostsCommand, async (f) => {
  const { nc, subjects } = await connectGlobal();
  try {
    return await f(nc, subjects);
  } finally {
    await nc.close();
  }
});

try {
  await program.parseAsync(process.argv);
} catch (err) {
  console.error(`${program.name()}: ${(err as Error).message}`);
  process.exit(1);
}
