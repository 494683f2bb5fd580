/**
 * The agent's operator endpoints on the NATS services API: `logs`, `exec` and `next` on
 * `<prefix>.ops.<host>.<op>.<caller>` (protocol in shared/nats/ops.ts, sessions in ./sessions.ts).
 *
 * Who asks is the subject's last token: operator credentials may publish only on subjects ending in their own
 * name, so nats-server has checked it before the request arrives (docs/nats.md, "Logs and exec"). Before an
 * exec runs, the agent asks the coordinator to record it as a Kubernetes Event on the Instance naming that
 * caller; without the coordinator's acknowledgement the exec is refused (no unrecorded exec).
 */
import type { Service, ServiceMsg } from '@nats-io/services';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Runtime } from '../../shared/api/index.js';
import type { Logger } from '../../shared/log.js';
import { decode, encode, MESSAGE_VERSION } from '../../shared/nats/messages.js';
import {
  type AuditRecord,
  ExecRequest,
  LogsRequest,
  NextRequest,
  OPS_ERRORS,
} from '../../shared/nats/ops.js';
import type { Subjects } from '../../shared/nats/subjects.js';
import type { Driver, InstanceState } from '../drivers/driver.js';
import { OutputError } from '../drivers/output.js';
import { OpsError, type SessionLimits, SessionStore } from './sessions.js';

/** Options of {@link addOpsEndpoints}. */
export interface OpsEndpointsOptions {
  nc: NatsConnection;
  subjects: Subjects;
  /** This host. */
  host: string;
  /** The agent's services API registration the endpoints are added to. */
  service: Service;
  /** The agent's drivers. */
  drivers: Partial<Record<Runtime, Driver>>;
  /** How long the coordinator has to acknowledge an exec's audit record, per attempt (3 attempts). */
  auditTimeoutMs?: number;
  /** Session bounds (tests make them small). */
  limits?: SessionLimits;
  log: Logger;
}

/** An instance found on this host, and the driver that runs it. */
interface Found {
  driver: Driver;
  state: InstanceState;
}

/** Adds the endpoints; `stop` closes every session. */
export function addOpsEndpoints(o: OpsEndpointsOptions): { sessions: SessionStore; stop(): void } {
  const sessions = new SessionStore(o.limits);
  const find = async (namespace: string, name: string): Promise<Found> => {
    for (const driver of Object.values(o.drivers)) {
      const state = await driver?.inspect(namespace, name).catch(() => undefined);
      if (driver && state) return { driver, state };
    }
    throw new OpsError(OPS_ERRORS.notFound, `instance ${namespace}/${name} is not on host ${o.host}`);
  };
  const containerOf = (f: Found, asked: string | undefined, namespace: string, name: string): string => {
    const names = f.state.containers.map((c) => c.name);
    const container = asked ?? names[0];
    if (!container || !names.includes(container))
      throw new OpsError(
        OPS_ERRORS.notFound,
        `instance ${namespace}/${name} has no container ${asked ?? '(none)'}; it has: ${names.join(', ') || 'none'}`,
      );
    return container;
  };

  const endpoint = (
    op: 'logs' | 'exec' | 'next',
    handle: (caller: string, data: Uint8Array) => Promise<unknown>,
  ) =>
    o.service.addEndpoint(op, {
      subject: o.subjects.opsEndpoint(o.host, op),
      handler: (err, msg: ServiceMsg) => {
        if (err) return;
        const caller = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
        handle(caller, msg.data).then(
          (reply) => msg.respond(encode(reply)),
          (e: Error) => {
            const code = e instanceof OpsError || e instanceof OutputError ? e.code : 500;
            if (code === 500) o.log.warn({ op, caller, err: e.message }, 'operator request failed');
            msg.respondError(code, e.message);
          },
        );
      },
    });

  const parse = <T>(what: () => T): T => {
    try {
      return what();
    } catch (e) {
      throw new OpsError(OPS_ERRORS.badRequest, (e as Error).message);
    }
  };

  endpoint('logs', async (caller, data) => {
    const r = parse(() => decode(LogsRequest, data));
    const f = await find(r.namespace, r.instance);
    if (!f.driver.logs)
      throw new OpsError(OPS_ERRORS.notImplemented, `the ${f.driver.runtime} runtime cannot show logs`);
    // A VM has one output, its console: no container to pick.
    const container =
      f.driver.runtime === 'vm' ? r.container : containerOf(f, r.container, r.namespace, r.instance);
    const options = {
      follow: r.follow,
      ...(container !== undefined ? { container } : {}),
      ...(r.tail !== undefined ? { tail: r.tail } : {}),
      ...(r.sinceSeconds !== undefined ? { sinceSeconds: r.sinceSeconds } : {}),
    };
    o.log.info({ caller, instance: `${r.namespace}/${r.instance}`, container, follow: r.follow }, 'logs');
    return sessions.open(caller, (onData) => f.driver.logs!(r.namespace, r.instance, options, onData));
  });

  endpoint('exec', async (caller, data) => {
    const r = parse(() => decode(ExecRequest, data));
    const f = await find(r.namespace, r.instance);
    if (!f.driver.execStream)
      throw new OpsError(
        OPS_ERRORS.notImplemented,
        `exec into a ${f.driver.runtime === 'vm' ? 'VM' : f.driver.runtime} instance is not supported: read its console with edgectl logs`,
      );
    const container = containerOf(f, r.container, r.namespace, r.instance);
    await audit({
      v: MESSAGE_VERSION,
      host: o.host,
      namespace: r.namespace,
      instance: r.instance,
      container,
      caller,
      action: 'exec',
      command: r.command,
      time: new Date().toISOString(),
    });
    o.log.info({ caller, instance: `${r.namespace}/${r.instance}`, container, command: r.command }, 'exec');
    return sessions.open(caller, (onData) =>
      f.driver.execStream!(r.namespace, r.instance, container, r.command, onData),
    );
  });

  endpoint('next', async (caller, data) => {
    const r = parse(() => decode(NextRequest, data));
    return sessions.next(caller, r.session, r.after);
  });

  /** The coordinator acknowledges with an empty reply, or answers why it did not record it. */
  const audit = async (record: AuditRecord): Promise<void> => {
    let last = '';
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        const reply = await o.nc.request(o.subjects.hostAudit(o.host), encode(record), {
          timeout: o.auditTimeoutMs ?? 2000,
        });
        if (!reply.data.length) return;
        throw new OpsError(
          OPS_ERRORS.forbidden,
          `exec refused: the coordinator did not record it: ${reply.string()}`,
        );
      } catch (e) {
        if (e instanceof OpsError) throw e;
        last = (e as Error).message;
      }
    }
    throw new OpsError(
      OPS_ERRORS.unavailable,
      `exec refused: the coordinator did not acknowledge its audit record (${last}); every exec is recorded`,
    );
  };

  return { sessions, stop: () => sessions.stop() };
}
