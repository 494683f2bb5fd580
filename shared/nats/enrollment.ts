/**
 * Messages and records of host enrollment (`edgectl hosts token create` → `edge-agent join`): the join request
 * and its answer, the administrative requests, and what the enrollment service keeps in its KV bucket. Same
 * rules as messages.ts: a `v`, unknown newer fields kept, malformed input rejected with the field named.
 */
import { z } from 'zod';

/** Kubernetes-style names: host names are DNS names, locations DNS labels (what subjects and keys allow). */
const HostName = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'a DNS name: lower-case letters, digits, - and .');
const LocationName = z
  .string()
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a DNS label: lower-case letters, digits and -');

/** A join token as the enrollment service keeps it (`tokens.<id>`). */
export const TokenRecord = z
  .object({
    v: z.number().int(),
    /** Token id (also the JWT's name `join-<id>` and the last token of its join subject). */
    id: z.string(),
    /** Location every host joining with it is enrolled in. */
    location: LocationName,
    /** ISO time after which it is refused (the bearer JWT expires then too). */
    expiresAt: z.string(),
    /** How many hosts may join with it. */
    uses: z.number().int().min(1),
    /** How many have. */
    used: z.number().int().min(0),
    /** ISO time it was revoked, if it was. */
    revokedAt: z.string().optional(),
    /** Public key of the token's bearer user (revoked in the account JWT with the token). */
    bearerKey: z.string(),
    createdAt: z.string(),
  })
  .loose();
export type TokenRecord = z.infer<typeof TokenRecord>;

/** An enrolled host (`hosts.<host>`): the identity its credentials were issued for. */
export const HostEnrollment = z
  .object({
    v: z.number().int(),
    host: HostName,
    location: LocationName,
    /** Public nkey (`U…`) of the host's NATS user; its seed never left the host. */
    publicKey: z.string(),
    /** Id of the token it joined with. */
    token: z.string(),
    issuedAt: z.string(),
    /** ISO time it was revoked (`edgectl hosts revoke`), if it was. */
    revokedAt: z.string().optional(),
  })
  .loose();
export type HostEnrollment = z.infer<typeof HostEnrollment>;

/** `<prefix>.enroll.join.<token>`: a host asks for its credentials. */
export const JoinRequest = z
  .object({
    v: z.number().int(),
    host: HostName,
    /** Location the host expects; must be the token's when given. */
    location: LocationName.optional(),
    /** The public key of the key pair the host made (`U…`). */
    publicKey: z.string().regex(/^U[A-Z2-7]{55}$/, 'a NATS user public key (U…)'),
  })
  .loose();
export type JoinRequest = z.infer<typeof JoinRequest>;

/** The answer: the host's user JWT, or why not. */
export const JoinResponse = z.union([
  z
    .object({
      v: z.number().int(),
      jwt: z.string(),
      host: HostName,
      location: LocationName,
      subjectPrefix: z.string(),
    })
    .loose(),
  z.object({ v: z.number().int(), error: z.string() }).loose(),
]);
export type JoinResponse = z.infer<typeof JoinResponse>;

/** `<prefix>.admin.tokens.create`. */
export const TokenCreateRequest = z
  .object({
    location: LocationName,
    /** Seconds until the token expires (default one hour, at most 30 days). */
    ttlSeconds: z
      .number()
      .int()
      .min(1)
      .max(30 * 86_400)
      .default(3600),
    /** Hosts that may join with it (default 1). */
    uses: z.number().int().min(1).max(100_000).default(1),
  })
  .loose();

export type TokenCreateRequest = z.infer<typeof TokenCreateRequest>;

/** `<prefix>.admin.tokens.revoke`. */
export const TokenRevokeRequest = z.object({ id: z.string() }).loose();

/** `<prefix>.admin.hosts.revoke`. */
export const HostRevokeRequest = z.object({ host: HostName }).loose();

/** Every administrative answer: `{ ok: true, … }` or `{ error }`. */
export type AdminResponse = ({ ok: true } & Record<string, unknown>) | { error: string };
