/**
 * Our NATS permission model against the real nats-server (issue 14, "Permissions"): for each identity (the agent of
 * host-a in loc-a, a monitor, an operator, the coordinator) fast-check generates subjects — the subjects Edgeplane
 * uses with tokens swapped for other hosts, locations, buckets and wildcards, and random ones — and an action
 * (publish or subscribe). The model (`permits` of shared/nats/permissions.ts, over the permissions the credentials
 * were generated with) predicts allowed or denied; the server's answer is whether it reports a permissions
 * violation for that subject. They must agree on every one.
 */
import fs from 'node:fs';
import type { NatsConnection } from '@nats-io/transport-node';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type GeneratedIdentity, generateIdentity, writeIdentity } from '../../../edgectl/credentials.js';
import { connectNats } from '../../../shared/nats/connect.js';
import { authorizationBlock, type NatsPermissions, permits } from '../../../shared/nats/permissions.js';
import { Subjects } from '../../../shared/nats/subjects.js';
import { cleanup, startNatsForTest, tempDir } from '../../harness/index.js';
import { reportFigures } from '../figures.js';
import { fuzzParams } from './arbitraries.js';

const subjects = new Subjects('edge');

/** Tokens subjects are made of: ours, other hosts' and locations', wildcards, and junk. */
const TOKENS = [
  'edge',
  'hosts',
  'host-a',
  'host-b',
  'report',
  'audit',
  'feed',
  'events',
  'instances',
  'workloads',
  'svc',
  'agent',
  'coordinator',
  'status',
  'ops',
  'logs',
  'exec',
  'next',
  'alice',
  'bob',
  'admin',
  'enroll',
  'join',
  'loc-a',
  'loc-b',
  'default',
  '$JS',
  'API',
  'INFO',
  'STREAM',
  'CONSUMER',
  'CREATE',
  'DELETE',
  'DIRECT',
  'GET',
  'MSG',
  'NEXT',
  'FC',
  '$KV',
  '$SRV',
  'PING',
  'KV_edge-intents',
  'edge-intents',
  'KV_edge-segments',
  'edge-feed',
  'edge-events',
  '_INBOX',
  'x',
];

/** A subject: one of the allow patterns with tokens replaced (wildcards only for subscribe), or random tokens. */
function subjectFor(allow: string[], action: 'publish' | 'subscribe'): fc.Arbitrary<string> {
  const token = action === 'subscribe' ? fc.constantFrom(...TOKENS, '*', '>') : fc.constantFrom(...TOKENS);
  const literal = (t: string) => (action === 'publish' && (t === '*' || t === '>') ? 'x' : t);
  const fromPattern = fc
    .tuple(fc.constantFrom(...allow), fc.array(fc.tuple(fc.nat(), token), { maxLength: 2 }), fc.nat(3))
    .map(([pattern, swaps, extra]) => {
      const tokens = pattern.split('.').map(literal);
      for (const [at, t] of swaps) tokens[at % tokens.length] = t;
      // Sometimes longer or shorter than the pattern.
      if (extra === 1) tokens.push('x');
      if (extra === 2 && tokens.length > 1) tokens.pop();
      // `>` only as the last token.
      const cut = tokens.indexOf('>');
      return (cut >= 0 ? tokens.slice(0, cut + 1) : tokens).join('.');
    });
  const random = fc.array(token, { minLength: 1, maxLength: 6 }).map((ts) => {
    const cut = ts.indexOf('>');
    return (cut >= 0 ? ts.slice(0, cut + 1) : ts).join('.');
  });
  return fc.oneof({ weight: 3, arbitrary: fromPattern }, { weight: 1, arbitrary: random });
}

/** A client of one identity, with the permission violations the server reported to it. */
interface Client {
  name: string;
  permissions: NatsPermissions;
  nc: NatsConnection;
  violations: string[];
}

/** Whether the server refuses `action` on `subject` for this client (a violation arrives before the flush's PONG). */
async function serverRefuses(c: Client, action: 'publish' | 'subscribe', subject: string): Promise<boolean> {
  const before = c.violations.length;
  if (action === 'publish') c.nc.publish(subject);
  else {
    const sub = c.nc.subscribe(subject);
    await c.nc.flush();
    sub.unsubscribe();
  }
  await c.nc.flush();
  await new Promise((r) => setImmediate(r));
  const quoted = `"${subject}"`;
  const kind = action === 'publish' ? /publish/i : /subscription/i;
  return c.violations.slice(before).some((v) => v.includes(quoted) && kind.test(v));
}

describe('NATS permissions: the model vs the real nats-server', () => {
  it('predicts every refusal and every permission of the agent, monitor, operator and coordinator', async () => {
    const dir = tempDir();
    const ids: GeneratedIdentity[] = [
      generateIdentity(subjects, { role: 'host', host: 'host-a', location: 'loc-a' }),
      generateIdentity(subjects, { role: 'monitor' }),
      generateIdentity(subjects, { role: 'operator', name: 'alice' }),
      generateIdentity(subjects, { role: 'coordinator' }),
    ];
    const files = ids.map((id) => writeIdentity(dir, id));
    const nats = await startNatsForTest({
      jetstream: false,
      configExtra: authorizationBlock(files.map((f) => fs.readFileSync(f.configFile, 'utf8'))),
    });
    const clients: Client[] = [];
    for (const [i, id] of ids.entries()) {
      const nc = await connectNats({ servers: [nats.url], name: id.name, creds: files[i]!.seedFile });
      cleanup(() => nc.close());
      const violations: string[] = [];
      void (async () => {
        for await (const s of nc.status())
          if (s.type === 'error' && /permissions violation/i.test(String(s.error)))
            violations.push(String(s.error));
      })();
      clients.push({ name: id.name, permissions: id.permissions, nc, violations });
    }

    const runs = fuzzParams(400, 10_000);
    const disagreements: string[] = [];
    let allowed = 0;
    let denied = 0;
    await fc.assert(
      fc.asyncProperty(
        fc
          .tuple(fc.nat(clients.length - 1), fc.constantFrom('publish' as const, 'subscribe' as const))
          .chain(([i, action]) => {
            const c = clients[i]!;
            const allow = action === 'publish' ? c.permissions.publish.allow : c.permissions.subscribe.allow;
            return subjectFor(allow, action).map((subject) => ({ c, action, subject }));
          }),
        async ({ c, action, subject }) => {
          const predicted = permits(c.permissions, action, subject);
          const refused = await serverRefuses(c, action, subject);
          if (predicted) allowed++;
          else denied++;
          if (predicted === refused)
            disagreements.push(
              `${c.name} ${action} ${subject}: model says ${predicted ? 'allowed' : 'denied'}, server ${refused ? 'refused' : 'allowed'}`,
            );
        },
      ),
      runs,
    );
    reportFigures({
      scenario: 'fuzz/nats-permissions',
      passed: disagreements.length === 0,
      runs: runs.numRuns,
      seed: runs.seed,
      allowed,
      denied,
      disagreements: disagreements.length,
    });
    expect(disagreements).toEqual([]);
    // Both verdicts were exercised.
    expect(allowed).toBeGreaterThan(runs.numRuns / 10);
    expect(denied).toBeGreaterThan(runs.numRuns / 10);
  });
});
