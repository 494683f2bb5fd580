/**
 * Turns the audit records agents send before an exec (`<prefix>.hosts.<host>.audit`) into Kubernetes Events on
 * the Instance (reason `Exec`, naming the operator), so `kubectl describe instance` and `kubectl get events` show
 * who ran what. Agents cannot write Kubernetes; only the leading coordinator is connected to NATS, so exactly one
 * coordinator records each exec.
 *
 * A record is acknowledged with an empty reply once the Event is handed to the recorder, and answered with the
 * reason otherwise (the agent then refuses the exec). It is refused when its host differs from the subject's (the
 * subject is what NATS permissions guard) or the Instance is not placed on that host.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { GROUP, VERSION } from '../../shared/api/index.js';
import type { Logger } from '../../shared/log.js';
import { decode } from '../../shared/nats/messages.js';
import { AuditRecord } from '../../shared/nats/ops.js';
import type { Subjects } from '../../shared/nats/subjects.js';
import type { EventRecorder } from '../kube/events.js';

/** An Instance as the audit needs it. */
export interface AuditedInstance {
  metadata: { name?: string; namespace?: string; uid?: string };
  spec: { host: string };
}

/** What {@link AuditRecorder} needs. */
export interface AuditRecorderOptions {
  nc: NatsConnection;
  subjects: Subjects;
  events: EventRecorder;
  /** The Instance cache. */
  instance: (namespace: string, name: string) => AuditedInstance | undefined;
  log: Logger;
}

/** At most this much of a command goes into the Event message. */
const COMMAND_CHARS = 200;

/** The Event message for an exec: who, what, where. */
export function execEventMessage(r: AuditRecord): string {
  let command = r.command.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
  if (command.length > COMMAND_CHARS) command = `${command.slice(0, COMMAND_CHARS)}…`;
  return `operator ${r.caller} ran exec in container ${r.container} on host ${r.host}: ${command}`;
}

export class AuditRecorder {
  private sub: Subscription | undefined;
  /** Execs recorded. */
  recorded = 0;
  /** Records refused (malformed, wrong host). */
  refused = 0;

  constructor(private readonly o: AuditRecorderOptions) {}

  start(): void {
    this.sub = this.o.nc.subscribe(this.o.subjects.allHostAudits, {
      callback: (err, msg) => {
        if (err) return;
        let answer = '';
        try {
          const r = decode(AuditRecord, msg.data);
          if (msg.subject !== this.o.subjects.hostAudit(r.host))
            throw new Error(
              `audit record of host ${JSON.stringify(r.host)} published on another host's subject`,
            );
          const instance = this.o.instance(r.namespace, r.instance);
          if (!instance) throw new Error(`no Instance ${r.namespace}/${r.instance}`);
          if (instance.spec.host !== r.host)
            throw new Error(
              `Instance ${r.namespace}/${r.instance} is placed on ${instance.spec.host}, not ${r.host}`,
            );
          this.o.events.record(
            {
              apiVersion: `${GROUP}/${VERSION}`,
              kind: 'Instance',
              metadata: {
                name: r.instance,
                namespace: r.namespace,
                ...(instance.metadata.uid ? { uid: instance.metadata.uid } : {}),
              },
            },
            'Normal',
            'Exec',
            execEventMessage(r),
          );
          this.recorded++;
          this.o.log.info(
            { caller: r.caller, instance: `${r.namespace}/${r.instance}`, host: r.host },
            'exec recorded',
          );
        } catch (e) {
          this.refused++;
          answer = (e as Error).message;
          this.o.log.warn({ subject: msg.subject, err: answer }, 'audit record refused');
        }
        if (msg.reply) msg.respond(answer);
      },
    });
  }

  stop(): void {
    this.sub?.unsubscribe();
  }
}
