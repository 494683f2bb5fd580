/**
 * Renders deploy/nats/nats-server.conf.tmpl for one server of the production cluster: each `{{name}}` is
 * replaced by its value, and a placeholder left unset is an error naming it (never a half-rendered file).
 *
 *   npx tsx deploy/nats/render.ts --server-name nats-1 --client-listen 0.0.0.0:4222 \
 *     --monitor-listen 10.0.0.1:8222 --route-listen 0.0.0.0:6222 \
 *     --routes nats-route://nats-2.internal:6222,nats-route://nats-3.internal:6222 \
 *     --tls-dir /etc/nats/tls --store-dir /var/lib/nats/jetstream > /etc/nats/nats-server.conf
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The values of one server. */
export interface ServerValues {
  /** Unique in the cluster. */
  serverName: string;
  /** host:port for clients. */
  clientListen: string;
  /** host:port of the monitoring endpoint. */
  monitorListen: string;
  /** host:port for routes. */
  routeListen: string;
  /** Route URLs of the other servers (`nats-route://host:port`). */
  routes: string[];
  /** Directory with ca.pem, server.pem and server.key. */
  tlsDir: string;
  /** JetStream store directory. */
  storeDir: string;
}

export const TEMPLATE_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'nats-server.conf.tmpl');

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** The template with `values` filled in. */
export function renderServerConfig(
  values: ServerValues,
  template = readFileSync(TEMPLATE_FILE, 'utf8'),
): string {
  const byName = new Map<string, string>(
    Object.entries(values).map(([k, v]) => [
      snake(k),
      Array.isArray(v) ? v.map((r) => JSON.stringify(r)).join(',\n    ') : String(v),
    ]),
  );
  return template.replace(/\{\{(\w+)\}\}/g, (_m, name: string) => {
    const v = byName.get(name);
    if (v === undefined || v === '') throw new Error(`nats-server.conf.tmpl: no value for {{${name}}}`);
    return v;
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const args = process.argv.slice(2);
  const get = (flag: string) => {
    const i = args.indexOf(`--${flag}`);
    if (i < 0 || !args[i + 1]) throw new Error(`--${flag} is required`);
    return args[i + 1]!;
  };
  process.stdout.write(
    renderServerConfig({
      serverName: get('server-name'),
      clientListen: get('client-listen'),
      monitorListen: get('monitor-listen'),
      routeListen: get('route-listen'),
      routes: get('routes').split(','),
      tlsDir: get('tls-dir'),
      storeDir: get('store-dir'),
    }),
  );
}
