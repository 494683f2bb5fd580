/**
 * The coordinator's HTTP server (`--metrics-address`, default 0.0.0.0:9464): `/metrics` (Prometheus),
 * `/healthz` and `/readyz` (see health.ts), and the live dashboard — `/` (the page), `/dashboard.js`,
 * `/dashboard.css`, `/api/fleet` (a JSON snapshot) and `/api/feed` (Server-Sent Events). It is created once
 * per process and outlives the {@link Coordinator} objects main.ts makes (a new one after leadership is lost):
 * each of them reports its role and hands its parts over through the {@link CoordinatorObserver} methods.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NatsConnection } from '@nats-io/transport-node';
import { listen, parseListenAddress } from '../../shared/listen.js';
import type { Logger } from '../../shared/log.js';
import { DashboardFeed } from './dashboard.js';
import { type CoordinatorRole, type HealthInput, liveness, readiness } from './health.js';
import { type CoordinatorMetrics, createCoordinatorMetrics } from './metrics.js';
import type { FleetSource } from './source.js';

/** What a Coordinator tells the HTTP side (all optional for the Coordinator: tests and benches pass none). */
export interface CoordinatorObserver {
  /** Waiting for the Lease. */
  standby(): void;
  /** Holds the Lease (or runs alone); connecting and syncing. */
  leading(): void;
  /** Started: caches synced; metrics and dashboard read from `source` from now on. */
  attach(source: FleetSource): void;
  /** Stopping: nothing is read from the old source any more. */
  detach(): void;
}

/** The page's files, read once: from next to this module (tsx) or from the source tree (dist/). */
function loadWebAssets(): Map<string, { type: string; body: Buffer }> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, 'web'), path.resolve(here, '../../../coordinator/observability/web')];
  const dir = candidates.find((d) => fs.existsSync(path.join(d, 'index.html')));
  const files = new Map<string, { type: string; body: Buffer }>();
  if (!dir) return files;
  const types: Record<string, string> = {
    '.html': 'text/html; charset=utf-8',
    '.js': 'text/javascript; charset=utf-8',
    '.css': 'text/css; charset=utf-8',
  };
  for (const name of ['index.html', 'dashboard.js', 'dashboard.css']) {
    const file = path.join(dir, name);
    if (fs.existsSync(file))
      files.set(name, { type: types[path.extname(name)]!, body: fs.readFileSync(file) });
  }
  return files;
}

export class CoordinatorHttp implements CoordinatorObserver {
  readonly metrics: CoordinatorMetrics;
  readonly dashboard: DashboardFeed;
  private role: CoordinatorRole = 'starting';
  private source: FleetSource | undefined;
  private natsConnected = false;
  private lastTick = performance.now();
  private readonly ticker: NodeJS.Timeout;
  private readonly server: http.Server;
  private readonly assets = loadWebAssets();
  /** Where it listens, e.g. http://127.0.0.1:9464 (set by {@link listen}). */
  url = '';

  private constructor(
    private readonly log: Logger,
    version: string,
  ) {
    this.dashboard = new DashboardFeed(log);
    this.metrics = createCoordinatorMetrics({ version, feedRejected: () => this.dashboard.malformed });
    this.ticker = setInterval(() => {
      this.lastTick = performance.now();
    }, 1000);
    this.ticker.unref();
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        log.warn({ err: (err as Error).message, url: req.url }, 'http request failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('internal error\n');
      });
    });
  }

  /** Parses `address` (host:port), listens, and logs the URL (tests started with port 0 read it there). */
  static async start(opts: { address: string; log: Logger; version: string }): Promise<CoordinatorHttp> {
    const addr = parseListenAddress(opts.address, '--metrics-address');
    const h = new CoordinatorHttp(opts.log, opts.version);
    const { url } = await listen(h.server, addr);
    h.url = url;
    opts.log.info(
      { metricsUrl: `${url}/metrics`, dashboardUrl: `${url}/`, address: opts.address },
      'serving metrics, health and the dashboard',
    );
    return h;
  }

  standby(): void {
    this.role = 'standby';
    this.metrics.setLeader(false);
    this.dashboard.setRole('standby');
  }

  leading(): void {
    this.role = 'leader';
    this.metrics.setLeader(true);
    this.dashboard.setRole('leader');
  }

  attach(source: FleetSource): void {
    this.source = source;
    this.natsConnected = !source.nc.isClosed();
    void this.followNats(source.nc);
    this.metrics.setSource(source);
    this.dashboard.attach(source, this.role);
  }

  detach(): void {
    this.source = undefined;
    this.role = 'stopping';
    this.metrics.setSource(undefined);
    this.metrics.setLeader(false);
    this.dashboard.detach('stopping');
  }

  health(): HealthInput {
    return {
      role: this.role,
      natsConnected: this.natsConnected && !!this.source && !this.source.nc.isClosed(),
      cachesSynced: this.source?.cachesSynced() ?? false,
      loopStallMs: performance.now() - this.lastTick,
    };
  }

  async close(): Promise<void> {
    clearInterval(this.ticker);
    this.dashboard.close();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private async followNats(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (this.source?.nc !== nc) return;
      if (s.type === 'disconnect') this.natsConnected = false;
      if (s.type === 'reconnect') this.natsConnected = true;
    }
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const text = (code: number, body: string): void => {
      res
        .writeHead(code, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' })
        .end(`${body}\n`);
    };
    switch (url.pathname) {
      case '/metrics': {
        const body = await this.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(body);
        return;
      }
      case '/healthz': {
        const r = liveness(this.health());
        return text(r.ok ? 200 : 503, r.detail);
      }
      case '/readyz': {
        const r = readiness(this.health());
        return text(r.ok ? 200 : 503, r.detail);
      }
      case '/api/fleet':
        res
          .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
          .end(JSON.stringify(this.dashboard.snapshot()));
        return;
      case '/api/feed':
        this.dashboard.serve(res);
        return;
    }
    const asset = this.assets.get(url.pathname === '/' ? 'index.html' : url.pathname.slice(1));
    if (!asset) return text(404, url.pathname === '/' ? 'dashboard files not installed' : 'not found');
    res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache' }).end(asset.body);
  }
}
