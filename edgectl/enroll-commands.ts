/** Wiring of edgectl's enrollment commands (`nats init`, `hosts token …`, `hosts revoke`, `hosts enrolled`). */
import type { NatsConnection } from '@nats-io/transport-node';
import type { Command } from 'commander';
import { Subjects } from '../shared/nats/subjects.js';
import { adminRequest, initOperator, parseTtl } from './enroll.js';
import { table } from './format.js';

type WithNats = <T>(f: (nc: NatsConnection, subjects: Subjects) => Promise<T>) => Promise<T>;

export function addEnrollmentCommands(program: Command, hosts: Command, withNats: WithNats): void {
  program
    .command('nats')
    .description('NATS operator mode (decentralized authentication)')
    .command('init')
    .description('make an operator, its accounts, the coordinator keys and the admin/monitor creds')
    .requiredOption('--out <dir>', 'directory for the files (keep operator-setup.json offline)')
    .option('--resolver-dir <dir>', 'where nats-server keeps account JWTs', '/var/lib/nats/jwt')
    .action(async (o: { out: string; resolverDir: string }) => {
      const { files } = await initOperator(o.out, o.resolverDir, new Subjects(program.opts().subjectPrefix));
      console.log(
        `nats-server: include ${files.serverConfig} in its configuration (all servers of a cluster)`,
      );
      console.log(
        `coordinator: EDGE_NATS_CREDS=${files.coordinatorCreds} --enroll-keys ${files.enrollKeys} --nats-sys-creds ${files.coordinatorSysCreds}`,
      );
      console.log(`edgectl:     --creds ${files.adminCreds} (admin) or ${files.monitorCreds} (feed only)`);
      console.log(`offline:     ${files.setup} (every seed, the operator's included)`);
    });

  const token = hosts.command('token').description('join tokens for edge-agent join');
  token
    .command('create')
    .description('print a join token for hosts of a location')
    .requiredOption('--location <location>', 'location the joining hosts are enrolled in')
    .option('--ttl <duration>', 'validity, e.g. 1h, 30m, 2d', '1h')
    .option('--uses <n>', 'how many hosts may join with it', '1')
    .action(async (o: { location: string; ttl: string; uses: string }) => {
      const uses = Number(o.uses);
      if (!Number.isInteger(uses) || uses < 1)
        throw new Error(`--uses: expected a positive integer, got ${o.uses}`);
      const r = await withNats((nc, s) =>
        adminRequest(nc, s, 'tokens.create', { location: o.location, ttlSeconds: parseTtl(o.ttl), uses }),
      );
      console.error(`token ${r.id} for ${r.location}: ${r.uses} use(s), expires ${r.expiresAt}`);
      console.log(r.token);
    });
  token
    .command('list')
    .description('list join tokens')
    .action(async () => {
      const r = await withNats((nc, s) => adminRequest(nc, s, 'tokens.list'));
      const rows = r.tokens as Array<Record<string, string | number>>;
      console.log(
        table([
          ['ID', 'LOCATION', 'STATE', 'USED', 'EXPIRES'],
          ...rows.map((t) => [t.id, t.location, t.state, `${t.used}/${t.uses}`, t.expiresAt].map(String)),
        ]),
      );
    });
  token
    .command('revoke <id>')
    .description('revoke a join token: no host may join with it any more')
    .action(async (id: string) => {
      await withNats((nc, s) => adminRequest(nc, s, 'tokens.revoke', { id }));
      console.log(`token ${id} revoked`);
    });

  hosts
    .command('revoke <host>')
    .description('cut a host off: nats-server closes and refuses its connection, its reports are refused')
    .action(async (host: string) => {
      await withNats((nc, s) => adminRequest(nc, s, 'hosts.revoke', { host }));
      console.log(`host ${host} revoked`);
    });
  hosts
    .command('enrolled')
    .description('list enrolled hosts and the identity their credentials carry')
    .action(async () => {
      const r = await withNats((nc, s) => adminRequest(nc, s, 'hosts.list'));
      const rows = r.hosts as Array<Record<string, string>>;
      console.log(
        table([
          ['HOST', 'LOCATION', 'ISSUED', 'REVOKED', 'KEY'],
          ...rows.map((h) => [h.host, h.location, h.issuedAt, h.revokedAt ?? '-', h.publicKey].map(String)),
        ]),
      );
    });
}
