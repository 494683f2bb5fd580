/**
 * Readiness and liveness probes, after the kubelet's prober: one worker per container and probe kind, started
 * when the container runs, counting consecutive results against the success and failure thresholds. Readiness
 * gates the instance's `ready`; a liveness failure restarts the container through its driver.
 */
import { EventEmitter } from 'node:events';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { Probe } from '../shared/api/template.js';
import type { Logger } from '../shared/log.js';
import type { Driver, InstanceRequest, InstanceState } from './drivers/driver.js';
import { containersOf } from './drivers/template.js';

/** Outcome of one probe run. */
export interface ProbeOutcome {
  /** Whether it passed. */
  ok: boolean;
  /** Why it failed. */
  detail?: string;
}

/** Where HTTP and TCP probes connect: the instance's address, and its ports by name. */
export interface ProbeTarget {
  /** Address of the instance as seen from the host. */
  address: string;
  /** Container ports by name (for `port: http`). */
  namedPorts: Record<string, number>;
}

/** Runs one probe once. */
export async function runProbe(
  probe: Probe,
  target: ProbeTarget,
  exec: (command: string[], timeoutMs: number) => Promise<{ exitCode: number; output: string }>,
): Promise<ProbeOutcome> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  const port = (p: number | string): number => {
    if (typeof p === 'number') return p;
    const n = target.namedPorts[p] ?? (/^\d+$/.test(p) ? Number(p) : undefined);
    if (n === undefined) throw new Error(`port "${p}" is not a named port of the container`);
    return n;
  };
  try {
    if (probe.exec) {
      const r = await exec(probe.exec.command, timeoutMs);
      return r.exitCode === 0
        ? { ok: true }
        : { ok: false, detail: `exec exited ${r.exitCode}: ${r.output.trim().slice(-200)}` };
    }
    if (probe.httpGet) {
      const get = probe.httpGet.scheme === 'HTTPS' ? httpsRequest : httpRequest;
      const status = await new Promise<number>((resolve, reject) => {
        const req = get(
          {
            host: target.address,
            port: port(probe.httpGet!.port),
            path: probe.httpGet!.path ?? '/',
            timeout: timeoutMs,
            rejectUnauthorized: false,
            headers: { 'user-agent': 'edge-agent-probe' },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
        req.on('error', reject);
        req.end();
      });
      return status >= 200 && status < 400
        ? { ok: true }
        : { ok: false, detail: `HTTP GET returned ${status}` };
    }
    if (probe.tcpSocket) {
      const p = port(probe.tcpSocket.port);
      await new Promise<void>((resolve, reject) => {
        const sock = connect({ host: target.address, port: p, timeout: timeoutMs });
        sock.once('connect', () => {
          sock.destroy();
          resolve();
        });
        sock.once('timeout', () => {
          sock.destroy();
          reject(new Error(`timed out after ${timeoutMs} ms`));
        });
        sock.once('error', reject);
      });
      return { ok: true };
    }
    return { ok: false, detail: 'probe has no handler' };
  } catch (err) {
    return { ok: false, detail: (err as Error).message };
  }
}

interface Worker {
  /** Identity of the container run the worker probes; a new run gets a new worker. */
  run: string;
  timer: NodeJS.Timeout | undefined;
  stopped: boolean;
  successes: number;
  failures: number;
  /** Readiness: passes; liveness: not yet failed. */
  healthy: boolean;
  detail?: string;
}

/** Emits `change` when a container's readiness flips or a liveness failure restarts it. */
export class ProbeManager extends EventEmitter {
  private workers = new Map<string, Worker>();

  constructor(private readonly log: Logger) {
    super();
  }

  /** Starts workers for the running containers of these instances and stops the rest. */
  sync(instances: Array<{ req: InstanceRequest; state: InstanceState; driver: Driver }>): void {
    const keep = new Set<string>();
    for (const { req, state, driver } of instances) {
      if (state.templateHash !== req.templateHash) continue;
      let specs: ReturnType<typeof containersOf>;
      try {
        specs = containersOf(req.template);
      } catch {
        continue;
      }
      const namedPorts: Record<string, number> = {};
      for (const c of specs) for (const p of c.ports ?? []) if (p.name) namedPorts[p.name] = p.containerPort;
      for (const c of specs) {
        const cs = state.containers.find((x) => x.name === c.name);
        if (cs?.state !== 'running') continue;
        for (const kind of ['readiness', 'liveness'] as const) {
          const probe = kind === 'readiness' ? c.readinessProbe : c.livenessProbe;
          if (!probe) continue;
          const key = `${state.namespace}/${state.name}/${c.name}/${kind}`;
          const run = `${state.providerID}/${state.startedAt}/${cs.restartCount}`;
          keep.add(key);
          const existing = this.workers.get(key);
          if (existing?.run === run) continue;
          if (existing) this.stopWorker(existing);
          const target = (): ProbeTarget => ({ address: state.ips[0] ?? published(state), namedPorts });
          this.startWorker(
            key,
            run,
            kind,
            probe,
            target,
            (cmd, t) => {
              if (!driver.exec) throw new Error(`the ${driver.runtime} runtime cannot run exec probes`);
              return driver.exec(state.namespace, state.name, c.name, cmd, t);
            },
            driver,
            state,
            c.name,
          );
        }
      }
    }
    for (const [key, w] of this.workers) {
      if (keep.has(key)) continue;
      this.stopWorker(w);
      this.workers.delete(key);
    }
  }

  private startWorker(
    key: string,
    run: string,
    kind: 'readiness' | 'liveness',
    probe: Probe,
    target: () => ProbeTarget,
    exec: (command: string[], timeoutMs: number) => Promise<{ exitCode: number; output: string }>,
    driver: Driver,
    state: InstanceState,
    container: string,
  ): void {
    const w: Worker = {
      run,
      timer: undefined,
      stopped: false,
      successes: 0,
      failures: 0,
      healthy: kind === 'liveness',
    };
    this.workers.set(key, w);
    const success = probe.successThreshold ?? 1;
    const failure = probe.failureThreshold ?? 3;
    const tick = async () => {
      if (w.stopped) return;
      const outcome = await runProbe(probe, target(), exec);
      if (w.stopped) return;
      if (outcome.ok) {
        w.successes++;
        w.failures = 0;
        if (!w.healthy && w.successes >= success) {
          w.healthy = true;
          w.detail = undefined;
          this.emit('change');
        }
      } else {
        w.failures++;
        w.successes = 0;
        w.detail = outcome.detail;
        if (w.healthy && w.failures >= failure) {
          w.healthy = false;
          this.log.info({ probe: key, detail: outcome.detail }, `${kind} probe failed`);
          if (kind === 'liveness' && driver.restartContainer) {
            w.stopped = true;
            this.workers.delete(key);
            await driver
              .restartContainer(state.namespace, state.name, container, 10)
              .catch((err) =>
                this.log.warn(
                  { probe: key, err: (err as Error).message },
                  'restart after liveness failure failed',
                ),
              );
          }
          this.emit('change');
        }
      }
      if (!w.stopped) w.timer = setTimeout(tick, (probe.periodSeconds ?? 10) * 1000);
    };
    w.timer = setTimeout(tick, (probe.initialDelaySeconds ?? 0) * 1000);
  }

  private stopWorker(w: Worker): void {
    w.stopped = true;
    if (w.timer) clearTimeout(w.timer);
  }

  /**
   * The state with readiness gated by the template's readiness probes: a container whose probe has not passed
   * (yet) is not ready, and neither is the instance.
   */
  gate(state: InstanceState, req: InstanceRequest): InstanceState {
    let specs: ReturnType<typeof containersOf>;
    try {
      specs = containersOf(req.template);
    } catch {
      return state;
    }
    let changed = false;
    const containers = state.containers.map((c) => {
      if (!c.ready || !specs.find((s) => s.name === c.name)?.readinessProbe) return c;
      const w = this.workers.get(`${state.namespace}/${state.name}/${c.name}/readiness`);
      if (w?.healthy) return c;
      changed = true;
      return { ...c, ready: false, message: `readiness probe: ${w?.detail ?? 'not passed yet'}` };
    });
    if (!changed) return state;
    return { ...state, containers, ready: false };
  }

  /** Stops every worker. */
  stop(): void {
    for (const w of this.workers.values()) this.stopWorker(w);
    this.workers.clear();
  }
}

function published(state: InstanceState): string {
  const ip = state.ports[0]?.hostIP;
  return !ip || ip === '0.0.0.0' ? '127.0.0.1' : ip;
}
