/**
 * The agent's optional HTTP endpoint (`--metrics-address`, off by default; use a loopback address):
 * `/metrics` (prom-client on its own Registry), `/healthz` (the process and its event loop run) and `/readyz`
 * (connected to NATS and its location's intents synced). `agent.ts` imports this module dynamically and only
 * when the flag is set, so an agent without it never loads prom-client or an HTTP server (idle RSS goal).
 *
 * Metrics: `edgeplane_agent_instance_start_duration_seconds` (histogram by runtime and result),
 * `edgeplane_agent_runtime_available` (1/0 per runtime), `edgeplane_agent_nats_connected`,
 * `edgeplane_agent_intents_synced`, `edgeplane_agent_intents_rejected_total` (malformed intents ignored),
 * `edgeplane_agent_instances` (by phase), `edgeplane_build_info`, and
 * prom-client's process metrics.
 */
import type { EventEmitter } from 'node:events';
import http from 'node:http';
import type { NatsConnection } from '@nats-io/transport-node';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { listen, parseListenAddress } from '../shared/listen.js';
import type { Logger } from '../shared/log.js';
import { registerProcessMetrics } from '../shared/process-metrics.js';

/** What the endpoint reads from the agent. */
export interface AgentMetricsSource {
  /** The NATS connection (still connecting when the endpoint starts). */
  nc: Promise<NatsConnection>;
  /** The location's intents have been read from NATS. */
  synced(): boolean;
  /** Whether removals may follow the intents (a marker of the coordinator vouches for them), and the intents held. */
  intentsTrust?(): { trusted: boolean; held: number; stale: number };
  /** Every runtime this agent has a driver for. */
  runtimes: readonly string[];
  /** The runtimes that work now. */
  usable(): readonly string[];
  /** Instances with their phase. */
  instances(): ReadonlyArray<{ phase: string }>;
  /** Emits `started` (runtime, seconds, ok) after every instance start attempt. */
  reconciler: EventEmitter;
  /** Intents refused as malformed since the agent started (a monotonic count). */
  rejectedIntents?: () => number;
}

/** A loop that has not run a timer for this long is stuck (the timer ticks every second). */
const MAX_LOOP_STALL_MS = 10_000;

export async function startAgentHttp(opts: {
  address: string;
  version: string;
  source: AgentMetricsSource;
  log: Logger;
}): Promise<{ url: string; close(): Promise<void> }> {
  const { source } = opts;
  const registry = new Registry();
  const registers = [registry];
  registerProcessMetrics(registry);

  let nc: NatsConnection | undefined;
  let connected = false;
  void source.nc.then(async (c) => {
    nc = c;
    connected = !c.isClosed();
    for await (const s of c.status()) {
      if (s.type === 'disconnect') connected = false;
      if (s.type === 'reconnect') connected = true;
    }
  });
  const natsUp = () => connected && !!nc && !nc.isClosed();

  new Gauge({
    name: 'edgeplane_build_info',
    help: 'Always 1; labels name the component and its version.',
    labelNames: ['component', 'version', 'nodejs_version'],
    registers,
  }).set({ component: 'agent', version: opts.version, nodejs_version: process.version }, 1);
  const starts = new Histogram({
    name: 'edgeplane_agent_instance_start_duration_seconds',
    help: 'Time a driver took to start an instance, by runtime and result (success, error).',
    labelNames: ['runtime', 'result'],
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers,
  });
  const onStarted = (runtime: string, seconds: number, ok: boolean) =>
    starts.observe({ runtime, result: ok ? 'success' : 'error' }, seconds);
  source.reconciler.on('started', onStarted);
  new Gauge({
    name: 'edgeplane_agent_runtime_available',
    help: '1 when the runtime works on this host (its last check passed), 0 when not.',
    labelNames: ['runtime'],
    registers,
    collect() {
      const usable = new Set(source.usable());
      for (const runtime of source.runtimes) this.set({ runtime }, usable.has(runtime) ? 1 : 0);
    },
  });
  new Gauge({
    name: 'edgeplane_agent_nats_connected',
    help: '1 while the agent is connected to NATS.',
    registers,
    collect() {
      this.set(natsUp() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'edgeplane_agent_intents_synced',
    help: "1 once the agent has read its location's intents from NATS.",
    registers,
    collect() {
      this.set(source.synced() ? 1 : 0);
    },
  });
  let rejectedSeen = 0;
  new Counter({
    name: 'edgeplane_agent_intents_rejected_total',
    help: 'Intents of this location ignored because they did not validate (the last good one is kept).',
    registers,
    collect() {
      const now = source.rejectedIntents?.() ?? 0;
      if (now > rejectedSeen) this.inc(now - rejectedSeen);
      rejectedSeen = Math.max(rejectedSeen, now);
    },
  });
  new Gauge({
    name: 'edgeplane_agent_intents_trusted',
    help: "1 while a marker of the coordinator vouches for the location's intents; 0: no instance is removed (recreated, emptied or restored bucket).",
    registers,
    collect() {
      this.set(source.intentsTrust?.().trusted === false ? 0 : 1);
    },
  });
  new Gauge({
    name: 'edgeplane_agent_intents_held',
    help: 'Intents kept running although the bucket lost them, until the coordinator restores or withdraws them.',
    registers,
    collect() {
      this.set(source.intentsTrust?.().held ?? 0);
    },
  });
  new Gauge({
    name: 'edgeplane_agent_intents_stale_ignored',
    help: 'Intent values ignored because they carried an epoch older than one seen (written by a deposed coordinator); a counter.',
    registers,
    collect() {
      this.set(source.intentsTrust?.().stale ?? 0);
    },
  });
  new Gauge({
    name: 'edgeplane_agent_instances',
    help: 'Instances this agent runs or was told to run, by phase.',
    labelNames: ['phase'],
    registers,
    collect() {
      this.reset();
      for (const i of source.instances()) this.inc({ phase: i.phase });
    },
  });

  let lastTick = performance.now();
  const ticker = setInterval(() => {
    lastTick = performance.now();
  }, 1000);
  ticker.unref();
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const text = (code: number, body: string) => {
      res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' }).end(`${body}\n`);
    };
    if (path === '/metrics') {
      registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
        (err: Error) => text(500, err.message),
      );
    } else if (path === '/healthz') {
      const stall = performance.now() - lastTick;
      if (stall > MAX_LOOP_STALL_MS) text(503, `event loop stalled for ${Math.round(stall)} ms`);
      else text(200, 'ok');
    } else if (path === '/readyz') {
      const missing = [
        ...(natsUp() ? [] : ['NATS not connected']),
        ...(source.synced() ? [] : ['intents not synced']),
      ];
      text(missing.length ? 503 : 200, missing.length ? missing.join('; ') : 'ok');
    } else text(404, 'not found');
  });
  const { url } = await listen(server, parseListenAddress(opts.address, '--metrics-address'));
  opts.log.info({ metricsUrl: `${url}/metrics`, address: opts.address }, 'serving metrics and health');
  return {
    url,
    async close() {
      clearInterval(ticker);
      source.reconciler.off('started', onStarted);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
