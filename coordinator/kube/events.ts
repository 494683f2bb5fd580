/**
 * Records Kubernetes Events (what `kubectl describe` and `kubectl get events` show), deduplicated like
 * client-go's recorder: a repeat of the same reason and message bumps `count` instead of adding an Event.
 */
import type { CoreV1Event } from '@kubernetes/client-node';
import type { Logger } from '../../shared/log.js';
import { apiErrorMessage, isNotFound, type KubeClient } from './client.js';

/** The object an event is about. */
export interface EventSubject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; uid?: string };
}

/** An event as it is also handed to other sinks (the NATS monitoring feed). */
export interface RecordedEvent {
  /** Normal or Warning. */
  type: 'Normal' | 'Warning';
  /** CamelCase reason, e.g. Placed, Unschedulable. */
  reason: string;
  /** Human-readable message. */
  message: string;
  /** The object it is about. */
  involvedObject: { apiVersion: string; kind: string; name: string; namespace?: string; uid?: string };
  /** How often it happened. */
  count: number;
  /** When it last happened (RFC 3339). */
  time: string;
}

export class EventRecorder {
  private seen = new Map<string, { name: string; namespace: string; count: number }>();
  private sinks: Array<(e: RecordedEvent) => void> = [];

  constructor(
    private readonly client: KubeClient,
    private readonly component: string,
    private readonly log: Logger,
  ) {}

  /** Adds a sink that sees every event, e.g. the monitoring feed. */
  addSink(sink: (e: RecordedEvent) => void): void {
    this.sinks.push(sink);
  }

  /** Records an event; never throws (an event is worth less than the reconcile that makes it). */
  record(obj: EventSubject, type: 'Normal' | 'Warning', reason: string, message: string): void {
    void this.write(obj, type, reason, message).catch((err) =>
      this.log.warn({ reason, err: apiErrorMessage(err) }, 'event not recorded'),
    );
  }

  private async write(
    obj: EventSubject,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void> {
    const namespace = obj.metadata.namespace ?? 'default';
    const now = new Date().toISOString();
    const involvedObject = {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      name: obj.metadata.name,
      ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}),
      ...(obj.metadata.uid ? { uid: obj.metadata.uid } : {}),
    };
    const dedupe = `${obj.metadata.uid ?? obj.metadata.name}|${type}|${reason}|${message}`;
    const prev = this.seen.get(dedupe);
    const count = (prev?.count ?? 0) + 1;
    for (const sink of this.sinks) sink({ type, reason, message, involvedObject, count, time: now });
    if (prev) {
      try {
        await this.client.core.patchNamespacedEvent(
          { name: prev.name, namespace: prev.namespace, body: { count, lastTimestamp: now } as never },
          (await import('@kubernetes/client-node')).setHeaderOptions(
            'Content-Type',
            'application/merge-patch+json',
          ),
        );
        prev.count = count;
        return;
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    const name = `${obj.metadata.name}.${Date.now().toString(16)}${Math.floor(Math.random() * 0xfff).toString(16)}`;
    const body: CoreV1Event = {
      metadata: { name, namespace },
      involvedObject,
      type,
      reason,
      message,
      count: 1,
      firstTimestamp: now as unknown as Date,
      lastTimestamp: now as unknown as Date,
      source: { component: this.component },
      reportingComponent: this.component,
    };
    await this.client.core.createNamespacedEvent({ namespace, body });
    if (this.seen.size > 10_000) this.seen.clear();
    this.seen.set(dedupe, { name, namespace, count: 1 });
  }
}
