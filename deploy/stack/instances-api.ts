/**
 * The coordinator's aggregated instances API on a local stack (`--instances-api=aggregated`): a serving
 * certificate for `edge-coordinator.edgeplane-system.svc` and 127.0.0.1, and the objects that route to it — an
 * ExternalName Service pointing at 127.0.0.1 (kube-apiserver then calls `https://127.0.0.1:<port>`) and one
 * APIService per served version, trusting the certificate's CA. The Instance CRD is removed: Instances are no
 * longer custom objects.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { apiServices, servingName } from '../../coordinator/apiserver/manifests.js';
import { INSTANCES_GROUP, SERVED_VERSIONS } from '../../coordinator/apiserver/versions.js';
import { kubectl } from './kube.js';
import { waitFor } from './proc.js';

/** Namespace and Service name of the coordinator. */
export const COORDINATOR_SERVICE = { namespace: 'edgeplane-system', service: 'edge-coordinator' } as const;

/** A CA and a serving certificate for the coordinator's instances API, made with openssl in `dir`. */
export function instancesApiCerts(dir: string): { ca: string; cert: string; key: string } {
  const f = (n: string) => path.join(dir, n);
  const out = { ca: f('instances-api-ca.crt'), cert: f('instances-api.crt'), key: f('instances-api.key') };
  if (fs.existsSync(out.cert)) return out;
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  const caKey = f('instances-api-ca.key');
  ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '3650',
    '-subj',
    '/CN=edgeplane instances-api ca',
    '-keyout',
    caKey,
    '-out',
    out.ca,
  );
  const name = servingName(COORDINATOR_SERVICE);
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', out.key, '-out', f('s.csr'));
  fs.writeFileSync(
    f('s.cnf'),
    `subjectAltName=DNS:${name},DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n`,
  );
  ssl(
    'x509',
    '-req',
    '-in',
    f('s.csr'),
    '-CA',
    out.ca,
    '-CAkey',
    caKey,
    '-CAcreateserial',
    '-days',
    '3650',
    '-extfile',
    f('s.cnf'),
    '-out',
    out.cert,
  );
  return out;
}

/** The coordinator flags of aggregated mode, serving on 127.0.0.1:`port`. */
export function instancesApiArgs(certs: { cert: string; key: string }, port: number): string[] {
  return [
    '--instances-api=aggregated',
    `--instances-api-address=127.0.0.1:${port}`,
    `--instances-api-cert=${certs.cert}`,
    `--instances-api-key=${certs.key}`,
  ];
}

/**
 * Routes the instances API to a coordinator on 127.0.0.1:`port` and removes the Instance CRD. Throws with
 * kubectl's message when something is refused.
 */
export async function registerInstancesApi(kubeconfig: string, caFile: string, port: number): Promise<void> {
  const objects = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: COORDINATOR_SERVICE.namespace } },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: COORDINATOR_SERVICE.service, namespace: COORDINATOR_SERVICE.namespace },
      spec: { type: 'ExternalName', externalName: '127.0.0.1', ports: [{ name: 'https', port }] },
    },
    ...apiServices({ ...COORDINATOR_SERVICE, port, caPem: fs.readFileSync(caFile, 'utf8') }),
  ];
  const applied = await kubectl(kubeconfig, ['apply', '-f', '-'], {
    input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
  });
  if (applied.code !== 0) throw new Error(`instances API not registered:\n${applied.stderr}`);
  const removed = await kubectl(kubeconfig, [
    'delete',
    'crd',
    'instances.compute.datumapis.com',
    '--ignore-not-found',
    // Custom objects left in it are removed by kube-apiserver in the background.
    '--wait=false',
  ]);
  if (removed.code !== 0) throw new Error(`Instance CRD not removed:\n${removed.stderr}`);
  await waitFor(
    'the instances APIService Available',
    async () =>
      (
        await kubectl(kubeconfig, [
          'get',
          'apiservice',
          `${SERVED_VERSIONS[0]!.version}.${INSTANCES_GROUP}`,
          '-o',
          'jsonpath={.status.conditions[?(@.type=="Available")].status}',
        ])
      ).stdout === 'True',
    { timeoutMs: 120_000, intervalMs: 500 },
  );
  // kubectl caches discovery (hours): `api-resources` refreshes it, so `instances` now means this group.
  await kubectl(kubeconfig, ['api-resources', '-o', 'name']);
}
