/**
 * `edge-agent health [--ready]`: asks the running agent's `/healthz` (or `/readyz`) on its configured
 * `metricsAddress` and turns the answer into an exit code and a one-line reason, for operators and for the
 * package's liveness timer (edge-agent-liveness.service).
 *
 * Exit codes: 0 healthy (ready), 1 unhealthy (not ready, no answer, refused), 2 cannot check (no
 * `metricsAddress` configured). The liveness unit restarts the agent only on 1, so a host without the HTTP
 * endpoint is never restarted for it. Readiness (NATS connected, intents synced) is for operators only: an
 * agent without NATS keeps running its instances (autonomy), so nothing restarts it for that.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { parseYaml } from './yaml.js';

/** What a check found. */
export interface HealthResult {
  /** 0 healthy/ready, 1 not, 2 cannot check. */
  code: 0 | 1 | 2;
  /** One line for a person: the endpoint's answer or why there is none. */
  reason: string;
}

/** Where to ask: `--address`, else $EDGE_METRICS_ADDRESS, else `metricsAddress` of the config file. */
export function healthAddress(opts: {
  address?: string;
  config?: string;
  env?: NodeJS.ProcessEnv;
}): string | undefined {
  if (opts.address) return opts.address;
  const env = opts.env?.EDGE_METRICS_ADDRESS;
  if (env) return env;
  if (!opts.config) return undefined;
  const file = parseYaml(readFileSync(opts.config, 'utf8')) as { metricsAddress?: unknown } | null;
  return typeof file?.metricsAddress === 'string' && file.metricsAddress ? file.metricsAddress : undefined;
}

/** GETs `/healthz` (or `/readyz`) at `address` (`host:port`) within `timeoutMs`. */
export function checkHealth(
  address: string | undefined,
  opts: { ready?: boolean; timeoutMs?: number } = {},
): Promise<HealthResult> {
  if (!address) return Promise.resolve({ code: 2, reason: 'no metricsAddress configured: nothing to ask' });
  const path = opts.ready ? '/readyz' : '/healthz';
  const url = `http://${address}${path}`;
  return new Promise((resolve) => {
    const req = request(url, { timeout: opts.timeoutMs ?? 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => {
        const line = body.trim().split('\n')[0] ?? '';
        resolve({ code: res.statusCode === 200 ? 0 : 1, reason: `${url}: ${res.statusCode} ${line}`.trim() });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${opts.timeoutMs ?? 5000} ms`)));
    req.on('error', (err) => resolve({ code: 1, reason: `${url}: ${err.message}` }));
    req.end();
  });
}
