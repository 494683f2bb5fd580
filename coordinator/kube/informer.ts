/**
 * A cache of one resource kept current by list+watch (client-node's informer), restarted with backoff when
 * the watch fails, so the controllers above it survive API server restarts.
 */
import { makeInformer } from '@kubernetes/client-node';
import type { Logger } from '../../shared/log.js';
import {
  apiErrorMessage,
  KubeClient as Client,
  type KubeClient,
  type KubeObject,
  type ResourceRef,
} from './client.js';

/** A resource outside Edgeplane's kinds (Secrets, ConfigMaps): its watch path and list call. */
export interface ListSource {
  /** URL path of the collection across namespaces, e.g. /api/v1/secrets. */
  path: string;
  /** Lists the collection across namespaces. */
  list: () => Promise<unknown>;
}

/** Called with the object that changed (for deletes, its last known state). */
export type ObjectHandler<T> = (obj: T, event: 'add' | 'update' | 'delete') => void;

export class ResourceCache<T extends { metadata: { name?: string; namespace?: string } } = KubeObject> {
  // biome-ignore lint/suspicious/noExplicitAny: custom objects are untyped JSON at this boundary
  private informer: ReturnType<typeof makeInformer<any>>;
  private handlers: ObjectHandler<T>[] = [];
  private stopped = false;
  private started = false;
  private readonly path: string;
  /** Resolves once a list has succeeded and its objects are in the cache (or when the cache is stopped). */
  private readonly listed: Promise<void>;
  private markListed: () => void = () => {};

  constructor(
    client: KubeClient,
    readonly ref: ResourceRef | ListSource,
    private readonly log: Logger,
  ) {
    this.path = 'path' in ref ? ref.path : Client.path(ref);
    const listOnce = 'path' in ref ? ref.list : () => client.list<KubeObject>(ref);
    this.listed = new Promise((resolve) => {
      this.markListed = resolve;
    });
    // The informer adds the listed objects in the continuation of this promise; a timer runs after it.
    const list = async () => {
      const result = await listOnce();
      setTimeout(() => this.markListed(), 0);
      return result;
    };
    // Objects arrive as plain JSON (timestamps stay strings), hence the loose type at this boundary.
    // biome-ignore lint/suspicious/noExplicitAny: custom objects are untyped JSON at this boundary
    this.informer = makeInformer<any>(client.kc, this.path, list as never);
    for (const event of ['add', 'update', 'delete'] as const) {
      this.informer.on(event, (obj) => {
        // managedFields (server-side apply's bookkeeping) is most of a small object and nothing here reads it:
        // dropped from the cached object as client-go's informers do with a transform (issue 15, memory).
        if (event !== 'delete' && obj?.metadata?.managedFields) delete obj.metadata.managedFields;
        for (const h of this.handlers) h(obj as T, event);
      });
    }
    this.informer.on('error', (err) => {
      if (this.stopped) return;
      // A list failure carries the server's message; a watch failure only its status, so name the request here.
      const watchForbidden = (err as { statusCode?: number })?.statusCode === 403;
      this.log.warn(
        {
          resource: this.path,
          err: watchForbidden ? `403 Forbidden: cannot watch ${this.path}` : apiErrorMessage(err),
        },
        'list or watch failed; restarting',
      );
      setTimeout(() => {
        if (!this.stopped) this.informer.start().catch(() => undefined);
      }, 2000);
    });
  }

  /** Registers a change handler. */
  onChange(handler: ObjectHandler<T>): void {
    this.handlers.push(handler);
  }

  /**
   * Lists and starts watching; resolves once a list succeeded. client-node reports a failed list through
   * 'error' (where it is logged and retried), not by rejecting, so without waiting for one a forbidden or
   * failing list would leave the controllers acting on an empty cache.
   */
  async start(): Promise<void> {
    for (let delay = 500; !this.stopped; delay = Math.min(delay * 2, 5000)) {
      try {
        await this.informer.start();
        break;
      } catch (err) {
        this.log.warn({ resource: this.path, err: apiErrorMessage(err) }, 'list failed; retrying');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    await this.listed;
    if (!this.stopped) this.started = true;
  }

  get isStarted(): boolean {
    return this.started;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.markListed();
    await this.informer.stop();
  }

  list(namespace?: string): T[] {
    return this.informer.list(namespace) as T[];
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.informer.get(name, namespace) as T | undefined;
  }
}
