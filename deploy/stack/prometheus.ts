/**
 * A real Prometheus (Debian's `prometheus` from PATH) on 127.0.0.1, scraping given targets with a short
 * interval and loading alert rule files, with its TSDB in a temp directory. Used by the observability tests
 * to check that what the coordinator exports works in the real thing: targets up, queries answer.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { freePort } from '../../shared/os.js';
import { type DaemonOptions, httpGet, type Proc, startProc, tail, waitFor } from './proc.js';

/** Options of {@link startPrometheus}. */
export interface PrometheusOptions extends DaemonOptions {
  /** Scrape targets (`host:port`) of the job `edgeplane-coordinator`. */
  targets: string[];
  /** Scrape and rule evaluation interval in seconds (default 1). */
  intervalSeconds?: number;
  /**
   * A prometheus.yml to start from (deploy/monitoring/prometheus.yml): its scrape jobs keep everything but
   * their targets, which become `targets`; its rule files are loaded (relative to it). Without it, one job
   * `edgeplane-coordinator`.
   */
  baseConfig?: string;
}

/** A running Prometheus. */
export interface PrometheusHandle {
  /** Base URL, e.g. http://127.0.0.1:9090. */
  readonly url: string;
  readonly proc: Proc;
  /** An instant query; throws with Prometheus's error when the query fails. */
  query(promql: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  /** The scrape targets and their health (`up`, `down`, `unknown`). */
  targets(): Promise<Array<{ scrapeUrl: string; health: string; lastError: string }>>;
  stop(): Promise<void>;
}

export async function startPrometheus(opts: PrometheusOptions): Promise<PrometheusHandle> {
  fs.mkdirSync(opts.dir, { recursive: true });
  const interval = `${opts.intervalSeconds ?? 1}s`;
  type ScrapeConfig = Record<string, unknown>;
  const base = (opts.baseConfig ? parse(fs.readFileSync(opts.baseConfig, 'utf8')) : {}) as {
    global?: Record<string, unknown>;
    rule_files?: string[];
    scrape_configs?: ScrapeConfig[];
  };
  const jobs = base.scrape_configs ?? [{ job_name: 'edgeplane-coordinator' }];
  const config = stringify({
    ...base,
    global: { ...base.global, scrape_interval: interval, evaluation_interval: interval },
    rule_files: (base.rule_files ?? []).map((f) => path.resolve(path.dirname(opts.baseConfig ?? '.'), f)),
    scrape_configs: jobs.map((j) => ({ ...j, static_configs: [{ targets: opts.targets }] })),
  });
  const configFile = path.join(opts.dir, 'prometheus.yml');
  fs.writeFileSync(configFile, config);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = startProc({
    ...opts,
    name: 'prometheus',
    command: 'prometheus',
    args: [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(opts.dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--web.enable-lifecycle',
      '--log.level=warn',
    ],
  });
  await waitFor(
    'prometheus to be ready',
    async () => (await httpGet(`${url}/-/ready`).catch(() => ({ status: 0 }))).status === 200,
    {
      timeoutMs: 60_000,
      abort: () =>
        proc.exit ? `prometheus exited (${JSON.stringify(proc.exit)}):\n${tail(proc.logFile)}` : undefined,
    },
  );
  const api = async (p: string) => {
    const r = await fetch(`${url}${p}`);
    const body = (await r.json()) as { status: string; data: unknown; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${p}: ${body.error ?? r.status}`);
    return body.data;
  };
  return {
    url,
    proc,
    async query(promql) {
      const data = (await api(`/api/v1/query?query=${encodeURIComponent(promql)}`)) as {
        result: Array<{ metric: Record<string, string>; value: [number, string] }>;
      };
      return data.result;
    },
    async targets() {
      const data = (await api('/api/v1/targets')) as {
        activeTargets: Array<{ scrapeUrl: string; health: string; lastError: string }>;
      };
      return data.activeTargets;
    },
    stop: () => proc.stop(),
  };
}
