/**
 * The conversion webhook: an HTTPS server answering `POST /convert` with review.ts, its serving certificate (from
 * a Secret, a directory, or made on first start: certs.ts), and the CRDs pointed at it — each CRD that serves a
 * second version gets `spec.conversion.webhook.clientConfig` with the CA and either this server's URL (a
 * coordinator outside the cluster, the dev stack and tests: loopback) or the Service the CRDs name
 * (deploy/kubernetes). Every coordinator serves it, leader or not: conversion holds no state.
 */
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { ApiextensionsV1Api, PatchStrategy, setHeaderOptions, type V1Secret } from '@kubernetes/client-node';
import { CONVERSION_SERVICE, GROUP, KINDS } from '../../shared/api/kinds.js';
import { type ListenAddress, parseListenAddress } from '../../shared/listen.js';
import type { Logger } from '../../shared/log.js';
import { apiErrorMessage, isConflict, isNotFound, type KubeClient } from '../kube/client.js';
import { makeServingCerts, type ServingCerts } from './certs.js';
import { answerReview, type ConversionReview } from './review.js';

/** Settings of the webhook (flags `--webhook-*`). */
export interface WebhookConfig {
  /** Where it listens (`host:port`; port 0 picks one). */
  address: string;
  /** The URL kube-apiserver calls; absent: the loopback URL of a loopback address, else the CRDs' Service. */
  url?: string;
  /** Directory holding tls.crt, tls.key and ca.crt (made there when missing). */
  certDir?: string;
  /** `namespace/name` of a Secret holding them (made when missing): every replica serves the same certificate. */
  certSecret?: string;
}

/** Largest review body read (a list of many objects converts in one review). */
const MAX_BODY = 64 * 1024 * 1024;

/** The names the serving certificate is for: loopback, the Service's names, and the URL's host. */
function hostsFor(url: string | undefined): string[] {
  const s = CONVERSION_SERVICE;
  const hosts = [
    `${s.name}.${s.namespace}.svc`,
    `${s.name}.${s.namespace}.svc.cluster.local`,
    `${s.name}.${s.namespace}`,
    s.name,
    'localhost',
    '127.0.0.1',
  ];
  if (url) hosts.unshift(new URL(url).hostname.replace(/^\[|\]$/g, ''));
  return [...new Set(hosts)];
}

function certsFromDir(dir: string, hosts: string[]): ServingCerts {
  const f = (n: string) => path.join(dir, n);
  if (fs.existsSync(f('tls.crt')) && fs.existsSync(f('tls.key')) && fs.existsSync(f('ca.crt')))
    return {
      cert: fs.readFileSync(f('tls.crt'), 'utf8'),
      key: fs.readFileSync(f('tls.key'), 'utf8'),
      ca: fs.readFileSync(f('ca.crt'), 'utf8'),
    };
  const made = makeServingCerts(hosts);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(f('ca.crt'), made.ca);
  fs.writeFileSync(f('tls.crt'), made.cert);
  fs.writeFileSync(f('tls.key'), made.key, { mode: 0o600 });
  return made;
}

async function certsFromSecret(kube: KubeClient, ref: string, hosts: string[]): Promise<ServingCerts> {
  const [namespace, name] = ref.split('/') as [string, string];
  const read = (s: V1Secret): ServingCerts | undefined => {
    const d = s.data ?? {};
    if (!d['tls.crt'] || !d['tls.key'] || !d['ca.crt']) return undefined;
    const text = (k: string) => Buffer.from(d[k]!, 'base64').toString('utf8');
    return { cert: text('tls.crt'), key: text('tls.key'), ca: text('ca.crt') };
  };
  try {
    const found = read(await kube.core.readNamespacedSecret({ namespace, name }));
    if (found) return found;
    throw new Error(`Secret ${ref} lacks tls.crt, tls.key or ca.crt`);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  const made = makeServingCerts(hosts);
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  try {
    await kube.core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name, namespace, labels: { 'app.kubernetes.io/part-of': 'edgeplane' } },
        type: 'kubernetes.io/tls',
        data: { 'tls.crt': b64(made.cert), 'tls.key': b64(made.key), 'ca.crt': b64(made.ca) },
      },
    });
    return made;
  } catch (err) {
    // Another replica made it first: serve that one.
    if (!isConflict(err)) throw err;
    const found = read(await kube.core.readNamespacedSecret({ namespace, name }));
    if (!found) throw new Error(`Secret ${ref} lacks tls.crt, tls.key or ca.crt`);
    return found;
  }
}

/** The names of the CRDs that serve a converted version. */
export function convertedCrdNames(): string[] {
  return KINDS.filter((k) => k.extraVersions?.length).map((k) => `${k.plural}.${GROUP}`);
}

/** The running webhook. */
export class ConversionWebhook {
  private constructor(
    private readonly server: https.Server,
    /** The URL kube-apiserver is told to call (undefined: the CRDs' Service). */
    readonly url: string | undefined,
    /** The CA of the serving certificate (PEM). */
    readonly caPem: string,
    private readonly log: Logger,
  ) {}

  /** Loads or makes the certificate, listens, and points the CRDs at this server (retried until it works). */
  static async start(config: WebhookConfig, kube: KubeClient, log: Logger): Promise<ConversionWebhook> {
    const addr: ListenAddress = parseListenAddress(config.address, '--webhook-address');
    const loopback = /^(127\.|::1$|localhost$)/.test(addr.host);
    let certs: ServingCerts;
    // The URL's port is known only once listening (port 0): name the host now, the port later.
    const host = config.url ? undefined : loopback ? addr.host : undefined;
    const hosts = hostsFor(
      config.url ?? (host ? `https://${host.includes(':') ? `[${host}]` : host}/` : undefined),
    );
    if (config.certSecret) certs = await certsFromSecret(kube, config.certSecret, hosts);
    else if (config.certDir) certs = certsFromDir(config.certDir, hosts);
    else certs = makeServingCerts(hosts);
    const server = https.createServer({ cert: certs.cert, key: certs.key }, (req, res) => {
      if (req.method !== 'POST' || !req.url?.startsWith(CONVERSION_SERVICE.path)) {
        res.writeHead(404).end();
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) {
          res.writeHead(413).end();
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => {
        if (res.writableEnded) return;
        let review: ConversionReview;
        try {
          review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ConversionReview;
        } catch {
          res.writeHead(400, { 'content-type': 'text/plain' }).end('body is not JSON');
          return;
        }
        const answer = answerReview(review);
        if (answer.response?.result.status === 'Failure')
          log.warn({ message: answer.response.result.message }, 'conversion refused');
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
      });
    });
    server.on('clientError', (_err, socket) => socket.destroy());
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(addr.port, addr.host, () => {
        server.off('error', reject);
        const a = server.address();
        resolve(typeof a === 'object' && a ? a.port : addr.port);
      });
    });
    const url =
      config.url ??
      (loopback
        ? `https://${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${port}${CONVERSION_SERVICE.path}`
        : undefined);
    const hook = new ConversionWebhook(server, url, certs.ca, log);
    log.info(
      { webhookAddress: `${addr.host}:${port}`, webhookUrl: url ?? "the CRDs' Service" },
      'conversion webhook listening',
    );
    // In the background: CRDs applied after the coordinator started are pointed at it when they appear.
    hook.registered = new Promise<void>((resolve) => {
      hook.resolveRegistered = resolve;
    });
    void hook.registerUntilDone(kube);
    return hook;
  }

  /**
   * Points every converted CRD at this webhook: `strategy: Webhook` with the CA and the URL (or the Service). At
   * start it takes the CRDs over; afterwards, every 30 s, it repairs only a CRD whose conversion is off (made
   * again from the files), so two coordinators never flap between each other's URLs.
   */
  private async registerUntilDone(kube: KubeClient): Promise<void> {
    const api = kube.kc.makeApiClient(ApiextensionsV1Api);
    const caBundle = Buffer.from(this.caPem).toString('base64');
    const clientConfig = this.url
      ? { caBundle, url: this.url, service: null }
      : { caBundle, url: null, service: { ...CONVERSION_SERVICE } };
    const pending = new Set(convertedCrdNames());
    const patch = async (name: string, onlyWhenOff: boolean): Promise<boolean> => {
      const crd = await api.readCustomResourceDefinition({ name });
      const off = crd.spec.conversion?.strategy !== 'Webhook' || crd.spec.versions.some((v) => !v.served);
      if (onlyWhenOff && !off) return false;
      await api.patchCustomResourceDefinition(
        {
          name,
          body: {
            spec: {
              conversion: {
                strategy: 'Webhook',
                webhook: { conversionReviewVersions: ['v1'], clientConfig },
              },
            },
          },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      return true;
    };
    for (let attempt = 0; !this.closed; attempt++) {
      for (const name of convertedCrdNames()) {
        try {
          const first = pending.has(name);
          if (await patch(name, !first))
            this.log.info({ crd: name, url: this.url ?? 'Service' }, 'CRD uses the conversion webhook');
          pending.delete(name);
        } catch (err) {
          if (attempt % 15 === 0)
            this.log.warn(
              { crd: name, err: apiErrorMessage(err) },
              'cannot point CRD at the conversion webhook yet',
            );
        }
      }
      if (!pending.size && !this.firstDone) {
        this.firstDone = true;
        this.resolveRegistered();
      }
      await new Promise((r) => setTimeout(r, pending.size ? 2000 : 30_000).unref());
    }
  }

  private firstDone = false;
  private resolveRegistered: () => void = () => {};
  private closed = false;
  /** Settles once every converted CRD points at this webhook (or the webhook closed first). */
  registered: Promise<void> = Promise.resolve();

  async close(): Promise<void> {
    this.closed = true;
    this.resolveRegistered();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
