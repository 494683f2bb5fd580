/**
 * NATS permissions of each Edgeplane identity, built from the same {@link Subjects} the code uses, so what an
 * identity may do cannot drift from what it does. An agent may read only its own location's intents and
 * Network segments and publish only as its own host; `edgectl` (monitoring) may only read the feed; the
 * coordinator may do everything under its prefix and the JetStream API.
 */
import { OPS_ACTIONS, type Subjects } from './subjects.js';

/** Publish/subscribe allow lists, as nats-server's `permissions` block takes them. */
export interface NatsPermissions {
  publish: { allow: string[] };
  subscribe: { allow: string[] };
  /** Lets a responder reply to request inboxes without a publish permission for them. */
  allow_responses?: boolean;
}

/** Inbox prefix of every client (nats.js default). */
const INBOX = '_INBOX.>';

/** What the agent of `host` in `location` may do. */
export function agentPermissions(subjects: Subjects, host: string, location: string): NatsPermissions {
  const stream = `KV_${subjects.intentsBucket}`;
  const keys = `$KV.${subjects.intentsBucket}.${subjects.intentFilter(location)}`;
  // The Network segments its location needs (peer lists), read the same way.
  const segStream = `KV_${subjects.segmentsBucket}`;
  const segKeys = `$KV.${subjects.segmentsBucket}.${subjects.segmentFilter(location)}`;
  return {
    publish: {
      allow: [
        // Its own host's report (and any future per-host subject).
        `${subjects.prefix}.hosts.${host}.>`,
        // KV watch/keys of its location only: the consumer's filter is part of the create subject.
        '$JS.API.INFO',
        `$JS.API.STREAM.INFO.${stream}`,
        `$JS.API.CONSUMER.CREATE.${stream}.*.${keys}`,
        `$JS.API.CONSUMER.INFO.${stream}.*`,
        `$JS.API.CONSUMER.DELETE.${stream}.*`,
        `$JS.API.DIRECT.GET.${stream}.${keys}`,
        `$JS.FC.${stream}.>`,
        `$JS.API.STREAM.INFO.${segStream}`,
        `$JS.API.CONSUMER.CREATE.${segStream}.*.${segKeys}`,
        `$JS.API.CONSUMER.INFO.${segStream}.*`,
        `$JS.API.CONSUMER.DELETE.${segStream}.*`,
        `$JS.API.DIRECT.GET.${segStream}.${segKeys}`,
        `$JS.FC.${segStream}.>`,
      ],
    },
    subscribe: {
      allow: [
        INBOX,
        '$SRV.PING',
        '$SRV.PING.>',
        '$SRV.INFO',
        '$SRV.INFO.>',
        '$SRV.STATS',
        '$SRV.STATS.>',
        subjects.agentStatus(host),
        // Operator actions (logs, exec) on this host; the caller's name is the last token.
        ...OPS_ACTIONS.map((op) => subjects.opsEndpoint(host, op)),
      ],
    },
    allow_responses: true,
  };
}

/** What a monitoring client (edgectl, dashboards) may do: read the feed, its streams and the status endpoints. */
export function monitorPermissions(subjects: Subjects): NatsPermissions {
  return {
    publish: {
      allow: [
        '$JS.API.INFO',
        `$JS.API.STREAM.INFO.${subjects.feedStream}`,
        `$JS.API.STREAM.INFO.${subjects.eventsStream}`,
        `$JS.API.CONSUMER.CREATE.${subjects.feedStream}.>`,
        `$JS.API.CONSUMER.CREATE.${subjects.eventsStream}.>`,
        `$JS.API.CONSUMER.DELETE.${subjects.feedStream}.*`,
        `$JS.API.CONSUMER.DELETE.${subjects.eventsStream}.*`,
        `$JS.API.CONSUMER.INFO.${subjects.feedStream}.*`,
        `$JS.API.CONSUMER.INFO.${subjects.eventsStream}.*`,
        `$JS.API.CONSUMER.MSG.NEXT.${subjects.feedStream}.*`,
        `$JS.API.CONSUMER.MSG.NEXT.${subjects.eventsStream}.*`,
        `$JS.FC.>`,
        '$SRV.>',
        `${subjects.prefix}.svc.>`,
      ],
    },
    subscribe: { allow: [INBOX, subjects.allFeed, subjects.allEvents] },
  };
}

/**
 * An operator named `name` (a person or tool that may read logs and exec into instances): everything the monitor
 * may, plus logs/exec/next requests on any host, but only on subjects ending in its own name. The agent takes the
 * caller's name from that token, so the server's permission check is what binds the name to these credentials.
 */
export function operatorPermissions(subjects: Subjects, name: string): NatsPermissions {
  checkOperatorName(name);
  const monitor = monitorPermissions(subjects);
  return {
    publish: { allow: [...monitor.publish.allow, ...OPS_ACTIONS.map((op) => subjects.opsOf(name, op))] },
    subscribe: monitor.subscribe,
  };
}

/**
 * An operator name is one subject token the agents' endpoints (`….<op>.*`) match: lower-case letters, digits,
 * `-` and `_`, as a user name. Throws naming the problem.
 */
export function checkOperatorName(name: string): void {
  if (!/^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$/.test(name))
    throw new Error(
      `operator name ${JSON.stringify(name)}: expected lower-case letters, digits, - and _ (at most 64), e.g. alice`,
    );
}

/** The coordinator: everything under its prefix, the JetStream API, and the services API. */
export function coordinatorPermissions(subjects: Subjects): NatsPermissions {
  return {
    publish: { allow: [`${subjects.prefix}.>`, '$JS.>', '$KV.>', '$SRV.>', INBOX] },
    subscribe: { allow: [`${subjects.prefix}.>`, '$JS.>', '$KV.>', '$SRV.>', INBOX] },
    allow_responses: true,
  };
}

/**
 * What a join token's bearer may do: ask the enrollment service once for credentials under that token and read
 * the answer in its own inbox. Nothing else: no intents, no reports, no other token's replies.
 */
export function joinPermissions(subjects: Subjects, tokenId: string): NatsPermissions {
  return {
    publish: { allow: [subjects.join(tokenId)] },
    subscribe: { allow: [`${subjects.joinInbox(tokenId)}.>`] },
  };
}

/** An operator's edgectl: what the monitor may do, plus the enrollment service's administrative requests. */
export function adminPermissions(subjects: Subjects): NatsPermissions {
  const monitor = monitorPermissions(subjects);
  return {
    publish: { allow: [...monitor.publish.allow, subjects.allAdmin] },
    subscribe: monitor.subscribe,
  };
}

/** One `authorization.users` entry of nats-server's configuration for an nkey user. */
export function nkeyUserConfig(publicKey: string, permissions: NatsPermissions, comment?: string): string {
  const list = (xs: string[]) => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;
  return [
    ...(comment ? [`# ${comment}`] : []),
    '{',
    `  nkey: ${JSON.stringify(publicKey)}`,
    '  permissions: {',
    `    publish: { allow: ${list(permissions.publish.allow)} }`,
    `    subscribe: { allow: ${list(permissions.subscribe.allow)} }`,
    ...(permissions.allow_responses ? ['    allow_responses: true'] : []),
    '  }',
    '}',
  ].join('\n');
}

/** A whole `authorization { users: [...] }` block from user entries. */
export function authorizationBlock(users: string[]): string {
  return `authorization {\n  users: [\n${users.map((u) => u.replace(/^/gm, '    ')).join('\n')}\n  ]\n}`;
}

/**
 * Whether `permissions` let a client publish on, or subscribe to, `subject` — the rule nats-server applies (the
 * model the permission fuzzing of test/chaos/fuzz checks against a real server). Publish: the literal subject
 * matches an allowed pattern. Subscribe: the subscription's subject, wildcards included, is a subset of an allowed
 * pattern (`edge.feed.hosts.*` under `edge.feed.>`; never `edge.>` under `edge.feed.>`). The inbox of a request
 * the client received (`allow_responses`) is not modelled here.
 */
export function permits(
  permissions: NatsPermissions,
  action: 'publish' | 'subscribe',
  subject: string,
): boolean {
  const allow = action === 'publish' ? permissions.publish.allow : permissions.subscribe.allow;
  return allow.some((pattern) => isSubsetOf(subject.split('.'), pattern.split('.')));
}

/** Whether every subject `tokens` matches is matched by `pattern` (both as tokens; wildcards `*` and `>`). */
function isSubsetOf(tokens: string[], pattern: string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p === '>') return tokens.length > i;
    const t = tokens[i];
    if (t === undefined || t === '>') return false;
    if (p !== '*' && p !== t) return false;
  }
  return tokens.length === pattern.length;
}
