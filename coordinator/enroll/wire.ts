/**
 * Starts enrollment for the coordinator when it runs in operator mode: loads its keys (`--enroll-keys`), opens
 * a system account connection (`--nats-sys-creds`) for revocations, opens the records, answers requests.
 */
import { readFileSync } from 'node:fs';
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import type { Logger } from '../../shared/log.js';
import { connectNats } from '../../shared/nats/connect.js';
import { formatIssues } from '../../shared/nats/messages.js';
import type { Subjects } from '../../shared/nats/subjects.js';
import type { BoundIdentity } from '../hosts/admission.js';
import { EnrollmentService } from './service.js';
import { EnrollmentStore } from './store.js';

/** The `--enroll-keys` file `edgectl nats init` writes. */
const EnrollmentKeysFile = z.object({
  accountPublicKey: z.string().regex(/^A[A-Z2-7]{55}$/, 'an account public key (A…)'),
  accountSigningSeed: z.string().regex(/^SA[A-Z2-7]{56}$/, 'an account seed (SA…)'),
  operatorSigningSeed: z.string().regex(/^SO[A-Z2-7]{56}$/, 'an operator seed (SO…)'),
});

export interface EnrollmentSettings {
  /** JSON file with the account and operator signing keys. */
  keysFile: string;
  /** `.creds` of a system account user. */
  sysCreds: string;
}

/** Running enrollment: the identity lookup for the host registry, and stop. */
export interface Enrollment {
  identityOf(host: string): BoundIdentity | undefined;
  service: EnrollmentService;
  stop(): Promise<void>;
}

export function loadEnrollmentKeys(file: string): z.infer<typeof EnrollmentKeysFile> {
  const parsed = EnrollmentKeysFile.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) throw new Error(`--enroll-keys ${file}: ${formatIssues(parsed.error)}`);
  return parsed.data;
}

export async function startEnrollment(o: {
  nc: NatsConnection;
  natsServers: string[];
  subjects: Subjects;
  replicas: number;
  settings: EnrollmentSettings;
  log: Logger;
  /** CA of the server certificate when not from EDGE_NATS_CA (as for the coordinator's own connection). */
  ca?: string;
}): Promise<Enrollment> {
  const keys = loadEnrollmentKeys(o.settings.keysFile);
  const sys = await connectNats({
    servers: o.natsServers,
    name: 'edge-coordinator-sys',
    creds: o.settings.sysCreds,
    ...(o.ca ? { ca: o.ca } : {}),
  });
  const store = new EnrollmentStore({ nc: o.nc, subjects: o.subjects, log: o.log, replicas: o.replicas });
  await store.start();
  const service = new EnrollmentService({ nc: o.nc, sys, subjects: o.subjects, keys, store, log: o.log });
  service.start();
  return {
    identityOf: (host) => store.identityOf(host),
    service,
    stop: async () => {
      service.stop();
      await sys.drain().catch(() => undefined);
    },
  };
}
