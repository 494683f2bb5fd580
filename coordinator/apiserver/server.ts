/**
 * The aggregated API server: HTTPS, answering what kube-apiserver forwards for the APIService of
 * {@link INSTANCES_GROUP} (discovery, OpenAPI, get/list/watch of Instances, as JSON or as a Table).
 *
 * Authentication is kube-apiserver's front proxy: the request must come with a client certificate signed by the
 * request-header CA (kube-system/extension-apiserver-authentication, as metrics-server reads it) and, when the
 * allowed-names list is not empty, with one of those common names. kube-apiserver has authenticated and
 * authorised the user (RBAC on `instances` in this group) before it forwards; anyone else is refused (401).
 * Health paths answer without a certificate.
 */
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { parseListenAddress } from '../../shared/listen.js';
import type { Logger } from '../../shared/log.js';
import {
  apiGroup,
  apiGroupList,
  apiResourceList,
  openApiV2,
  openApiV3,
  openApiV3Index,
} from './discovery.js';
import { route } from './routes.js';
import {
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
  SelectorError,
} from './selectors.js';
import type { ChangeListener, InstanceStore } from './store.js';
import { type IncludeObject, toTable, wantsTable } from './table.js';
import { INSTANCES_GROUP, type ServedVersion, type StoredObject } from './versions.js';
import { bookmark, expiredEvent, status, throughSelection, type WireEvent, watchStart } from './watch.js';

/** What the server needs. */
export interface InstancesApiServerOptions {
  /** `host:port` to listen on. */
  address: string;
  /** Serving certificate and key (PEM files). */
  certFile: string;
  keyFile: string;
  /** PEM of the request-header (front-proxy) client CA. */
  clientCaPem: string;
  /** Common names a front-proxy certificate may have; empty: any the CA signed. */
  allowedNames: string[];
  /** Where the Instances are. */
  store: InstanceStore;
  /** Logger. */
  log: Logger;
  /** Bookmark interval of watches that allow them (default 60 s). */
  bookmarkIntervalMs?: number;
}

type Query = URLSearchParams;

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** The selection of a list or watch: namespace, label and field selectors. */
function selection(namespace: string | undefined, q: Query): (o: StoredObject) => boolean {
  const labels = parseLabelSelector(q.get('labelSelector') ?? '');
  const fields = parseFieldSelector(q.get('fieldSelector') ?? '');
  return (o) =>
    (namespace === undefined || o.metadata.namespace === namespace) &&
    matchesLabels(labels, o.metadata.labels) &&
    matchesFields(fields, o);
}

export class InstancesApiServer {
  private server: https.Server | undefined;
  private readonly open = new Set<ServerResponse>();
  /** Bound port (after start). */
  port = 0;

  constructor(private readonly o: InstancesApiServerOptions) {}

  async start(): Promise<void> {
    const { host, port } = parseListenAddress(this.o.address, '--instances-api-address');
    this.server = https.createServer(
      {
        cert: fs.readFileSync(this.o.certFile),
        key: fs.readFileSync(this.o.keyFile),
        ca: this.o.clientCaPem,
        requestCert: true,
        rejectUnauthorized: false,
      },
      (req, res) => {
        try {
          this.handle(req, res);
        } catch (err) {
          this.o.log.warn({ err: (err as Error).message, url: req.url }, 'request failed');
          if (!res.headersSent) send(res, 500, status(500, 'InternalError', (err as Error).message));
          else res.end();
        }
      },
    );
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : port;
    this.o.log.info({ address: `${host}:${this.port}` }, 'instances API serving');
  }

  async stop(): Promise<void> {
    for (const res of this.open) res.end();
    this.open.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections?.();
  }

  /** Whether the caller is kube-apiserver's front proxy. */
  private authenticated(req: IncomingMessage): boolean {
    const socket = req.socket as TLSSocket;
    if (!socket.authorized) return false;
    if (!this.o.allowedNames.length) return true;
    const cn = socket.getPeerCertificate()?.subject?.CN;
    return typeof cn === 'string' && this.o.allowedNames.includes(cn);
  }

  private handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'https://x');
    const r = route(req.method ?? 'GET', url.pathname);
    if (r.kind === 'health') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      return;
    }
    if (!this.authenticated(req)) {
      send(res, 401, status(401, 'Unauthorized', 'a front-proxy client certificate is required'));
      return;
    }
    const q = url.searchParams;
    switch (r.kind) {
      case 'apis':
        return send(res, 200, apiGroupList());
      case 'group':
        return send(res, 200, apiGroup());
      case 'resources':
        return send(res, 200, apiResourceList(r.version));
      case 'openapi-v2':
        return send(res, 200, openApiV2());
      case 'openapi-v3-index':
        return send(res, 200, openApiV3Index());
      case 'openapi-v3':
        return send(res, 200, openApiV3(r.version));
      case 'read-only':
        return send(
          res,
          405,
          status(
            405,
            'MethodNotAllowed',
            `${r.resource} are written by the coordinator only (read-only API)`,
          ),
        );
      case 'not-found':
        return send(res, 404, status(404, 'NotFound', `the server could not find the requested resource`));
      case 'object': {
        const o = this.o.store.get(r.namespace, r.name);
        if (!o)
          return send(
            res,
            404,
            status(404, 'NotFound', `${r.version.kind.plural}.${INSTANCES_GROUP} "${r.name}" not found`, {
              name: r.name,
              group: INSTANCES_GROUP,
              kind: r.version.kind.plural,
            }),
          );
        const shown = r.version.fromStored(o);
        if (isWatch(q)) {
          const one = new URLSearchParams(q);
          one.set('fieldSelector', `metadata.name=${r.name}`);
          return this.watch(req, res, r.version, r.namespace, one);
        }
        if (wantsTable(req.headers.accept))
          return send(res, 200, this.table(r.version, [shown], q, shown.metadata.resourceVersion));
        return send(res, 200, shown);
      }
      case 'collection': {
        let selected: (o: StoredObject) => boolean;
        try {
          selected = selection(r.namespace, q);
        } catch (err) {
          if (err instanceof SelectorError) return send(res, 400, status(400, 'BadRequest', err.message));
          throw err;
        }
        if (isWatch(q)) return this.watch(req, res, r.version, r.namespace, q, selected);
        const items = this.o.store
          .list(r.namespace)
          .filter((o) => selected(o))
          .sort(byNamespaceAndName)
          .map((o) => r.version.fromStored(o));
        const rv = String(this.o.store.revision);
        if (wantsTable(req.headers.accept)) return send(res, 200, this.table(r.version, items, q, rv));
        return send(res, 200, {
          kind: `${r.version.kind.kind}List`,
          apiVersion: `${INSTANCES_GROUP}/${r.version.version}`,
          metadata: { resourceVersion: rv },
          items,
        });
      }
    }
  }

  private table(v: ServedVersion, items: StoredObject[], q: Query, rv: string | undefined): object {
    return toTable(items, v.kind.printerColumns, {
      nowMs: Date.now(),
      includeObject: (q.get('includeObject') as IncludeObject | null) ?? 'Metadata',
      ...(rv ? { resourceVersion: rv } : {}),
    });
  }

  private watch(
    req: IncomingMessage,
    res: ServerResponse,
    v: ServedVersion,
    namespace: string | undefined,
    q: Query,
    selectedIn?: (o: StoredObject) => boolean,
  ) {
    let selected: (o: StoredObject) => boolean;
    try {
      selected = selectedIn ?? selection(namespace, q);
    } catch (err) {
      if (err instanceof SelectorError) return send(res, 400, status(400, 'BadRequest', err.message));
      throw err;
    }
    const asTable = wantsTable(req.headers.accept);
    const store = this.o.store;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    this.open.add(res);
    const write = (e: WireEvent) => res.write(`${JSON.stringify(e)}\n`);
    const rvParam = q.get('resourceVersion') ?? undefined;
    const start = watchStart(
      rvParam,
      { objects: store.list(namespace), revision: store.revision },
      store.history,
      store.compactedThrough,
    );
    if (start.expired) {
      write(expiredEvent(rvParam ?? ''));
      res.end();
      this.open.delete(res);
      return;
    }
    const emit = (e: { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: StoredObject; revision: number }) => {
      const shown = v.fromStored(e.object);
      write({
        type: e.type,
        object: asTable
          ? toTable([shown], v.kind.printerColumns, {
              nowMs: Date.now(),
              includeObject: (q.get('includeObject') as IncludeObject | null) ?? 'Metadata',
              resourceVersion: String(e.revision),
            })
          : shown,
      });
    };
    // Synchronous from here to subscribe: no change of the store can fall between the start and the follow.
    for (const e of start.events) {
      const seen = throughSelection(e, selected);
      if (seen) emit(seen);
    }
    const listener: ChangeListener = (e) => {
      const seen = throughSelection(e, selected);
      if (seen) emit(seen);
    };
    const unsubscribe = store.subscribe(listener);
    const bookmarks =
      q.get('allowWatchBookmarks') === 'true'
        ? setInterval(
            () => write(bookmark(`${INSTANCES_GROUP}/${v.version}`, v.kind.kind, store.revision)),
            this.o.bookmarkIntervalMs ?? 60_000,
          )
        : undefined;
    const timeoutSeconds = Number(q.get('timeoutSeconds') ?? 1800);
    const timer = setTimeout(() => res.end(), Math.max(1, timeoutSeconds) * 1000);
    const done = () => {
      unsubscribe();
      clearInterval(bookmarks);
      clearTimeout(timer);
      this.open.delete(res);
    };
    res.on('close', done);
    req.on('close', done);
  }
}

function isWatch(q: Query): boolean {
  return q.get('watch') === 'true' || q.get('watch') === '1';
}

function byNamespaceAndName(a: StoredObject, b: StoredObject): number {
  return (
    (a.metadata.namespace ?? '').localeCompare(b.metadata.namespace ?? '') ||
    a.metadata.name.localeCompare(b.metadata.name)
  );
}
