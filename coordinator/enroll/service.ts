/**
 * The enrollment service of the coordinator (operator mode only). It answers:
 *
 * - `<prefix>.enroll.join.<token>`: a host presenting a join token (a bearer user JWT whose only right is to
 *   publish there) sends its name and the public key it made; the service checks the token (decisions.ts),
 *   signs a user JWT for that key with the account signing key — the host's permissions of permissions.ts,
 *   tags naming its host and location — records the enrollment, and answers with the JWT. The seed never
 *   leaves the host.
 * - `<prefix>.admin.tokens.create|list|revoke`, `<prefix>.admin.hosts.list|revoke`: edgectl with the admin
 *   identity. Revoking a token or a host adds its user key to the account JWT's revocations (resolver.ts), so
 *   nats-server closes its connections and refuses it; the host registry refuses its reports at once too.
 */
import { randomBytes } from 'node:crypto';
import { createUser } from '@nats-io/nkeys';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../../shared/log.js';
import { type EnrollmentKeys, issueUserJwt } from '../../shared/nats/accounts.js';
import { isWrongRevision } from '../../shared/nats/bucket-cas.js';
import {
  type AdminResponse,
  HostRevokeRequest,
  JoinRequest,
  type JoinResponse,
  TokenCreateRequest,
  TokenRevokeRequest,
} from '../../shared/nats/enrollment.js';
import { decode, encode, MESSAGE_VERSION } from '../../shared/nats/messages.js';
import { agentPermissions, joinPermissions } from '../../shared/nats/permissions.js';
import type { Subjects } from '../../shared/nats/subjects.js';
import { decideJoin, tokenState } from './decisions.js';
import { pushRevocations } from './resolver.js';
import type { EnrollmentStore } from './store.js';

/** Decisions of one join, each on a fresh read, before a bucket that keeps changing fails it. */
const JOIN_ATTEMPTS = 20;

export interface EnrollmentServiceOptions {
  /** The coordinator's connection (EDGE account). */
  nc: NatsConnection;
  /** A system account connection, to push account JWT updates to the resolver. */
  sys: NatsConnection;
  subjects: Subjects;
  keys: EnrollmentKeys;
  store: EnrollmentStore;
  log: Logger;
}

/** Tags of a host's user JWT (nats-server shows them in /connz; informational). */
export function hostTags(host: string, location: string): string[] {
  return [`edgeplane.dev/host:${host}`, `edgeplane.dev/location:${location}`];
}

export class EnrollmentService {
  private subs: Subscription[] = [];
  /** Joins granted, joins refused (also logged with the reason). */
  joined = 0;
  joinsRefused = 0;

  constructor(private readonly opts: EnrollmentServiceOptions) {}

  start(): void {
    const { nc, subjects } = this.opts;
    const on = (subject: string, handle: (msg: Msg) => Promise<unknown>) =>
      this.subs.push(
        nc.subscribe(subject, {
          queue: 'q',
          callback: (err, msg) => {
            if (err) return;
            // Through a promise, so a handler that throws synchronously (a decode in its argument list) is
            // refused like the others instead of escaping the callback, which would close our NATS reader.
            void Promise.resolve(msg)
              .then(handle)
              .then(
                (answer) => msg.respond(encode(answer)),
                (e: Error) => {
                  this.opts.log.warn({ subject: msg.subject, err: e.message }, 'enrollment request refused');
                  msg.respond(encode({ v: MESSAGE_VERSION, error: e.message }));
                },
              );
          },
        }),
      );
    on(subjects.allJoins, (m) => this.join(m));
    on(subjects.admin('tokens.create'), (m) => this.createToken(decode(TokenCreateRequest, m.data)));
    on(subjects.admin('tokens.list'), () => this.listTokens());
    on(subjects.admin('tokens.revoke'), (m) => this.revokeToken(decode(TokenRevokeRequest, m.data).id));
    on(subjects.admin('hosts.list'), async () => ({ ok: true, hosts: this.opts.store.hosts() }));
    on(subjects.admin('hosts.revoke'), (m) => this.revokeHost(decode(HostRevokeRequest, m.data).host));
  }

  stop(): void {
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
  }

  private async join(msg: Msg): Promise<JoinResponse> {
    const id = msg.subject.split('.').at(-1) ?? '';
    const req = decode(JoinRequest, msg.data);
    const { store, keys, subjects, log } = this.opts;
    // Compare-and-set on the token: a conflict (another join used it meanwhile) is decided again.
    for (let attempt = 1; ; attempt++) {
      const token = await store.token(id);
      const existing = await store.host(req.host);
      const d = decideJoin(token?.value, req, existing?.value, Date.now());
      if (!d.ok) {
        this.joinsRefused++;
        log.warn({ token: id, host: req.host, reason: d.reason }, 'join refused');
        return { v: MESSAGE_VERSION, error: d.reason };
      }
      try {
        if (d.consumesUse && token) {
          await store.putToken({ ...token.value, used: token.value.used + 1 }, token.revision);
          await store.putHost(
            {
              v: MESSAGE_VERSION,
              host: req.host,
              location: d.location,
              publicKey: req.publicKey,
              token: id,
              issuedAt: new Date().toISOString(),
            },
            existing?.revision ?? 0,
          );
        }
      } catch (e) {
        // Bucket-wide compare-and-set: any other write (another host joining) refuses this one; decide again
        // after a short random pause so joins arriving together do not collide in lockstep.
        if (attempt < JOIN_ATTEMPTS && isWrongRevision(e)) {
          await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
          continue;
        }
        throw e;
      }
      const jwt = await issueUserJwt(keys, {
        name: req.host,
        publicKey: req.publicKey,
        permissions: agentPermissions(subjects, req.host, d.location),
        tags: hostTags(req.host, d.location),
      });
      this.joined++;
      log.info({ host: req.host, location: d.location, token: id }, 'host enrolled');
      return {
        v: MESSAGE_VERSION,
        jwt,
        host: req.host,
        location: d.location,
        subjectPrefix: subjects.prefix,
      };
    }
  }

  private async createToken(req: TokenCreateRequest): Promise<AdminResponse> {
    const id = randomBytes(8).toString('hex');
    const bearer = createUser();
    const now = Date.now();
    const expiresAt = now + req.ttlSeconds * 1000;
    const token = await issueUserJwt(this.opts.keys, {
      name: `join-${id}`,
      publicKey: bearer.getPublicKey(),
      permissions: joinPermissions(this.opts.subjects, id),
      expiresAt,
      bearer: true,
    });
    const record = {
      v: MESSAGE_VERSION,
      id,
      location: req.location,
      expiresAt: new Date(expiresAt).toISOString(),
      uses: req.uses,
      used: 0,
      bearerKey: bearer.getPublicKey(),
      createdAt: new Date(now).toISOString(),
    };
    await this.opts.store.putToken(record, 0);
    this.opts.log.info({ token: id, location: req.location, uses: req.uses }, 'join token created');
    return { ok: true, id, token, location: req.location, expiresAt: record.expiresAt, uses: req.uses };
  }

  private async listTokens(): Promise<AdminResponse> {
    const now = Date.now();
    const tokens = (await this.opts.store.tokens()).map((t) => ({ ...t, state: tokenState(t, now) }));
    return { ok: true, tokens };
  }

  private async revokeToken(id: string): Promise<AdminResponse> {
    const t = await this.opts.store.token(id);
    if (!t) throw new Error(`no token ${id}`);
    if (!t.value.revokedAt)
      await this.opts.store.putToken({ ...t.value, revokedAt: new Date().toISOString() }, t.revision);
    await this.revokeKeys([t.value.bearerKey]);
    this.opts.log.info({ token: id }, 'join token revoked');
    return { ok: true, id };
  }

  private async revokeHost(host: string): Promise<AdminResponse> {
    const h = await this.opts.store.host(host);
    if (!h) throw new Error(`host ${host} is not enrolled`);
    if (!h.value.revokedAt)
      await this.opts.store.putHost({ ...h.value, revokedAt: new Date().toISOString() }, h.revision);
    await this.revokeKeys([h.value.publicKey]);
    this.opts.log.warn({ host, location: h.value.location }, 'host revoked');
    return { ok: true, host };
  }

  private revokeKeys(keys: string[]): Promise<void> {
    const { sys, keys: k } = this.opts;
    return pushRevocations(sys, k.accountPublicKey, k.operatorSigningSeed, keys);
  }
}
