/**
 * Chaos, hostile: where a Secret's value goes. A canary value (random, so no other byte sequence matches it) in a
 * Secret, used by a Workload in an env var and in a secret volume, on the whole stack (nats-server, kube-apiserver,
 * coordinator, three agents). Once its instances run, every byte of the nats-server's data dir (the raw JetStream
 * store: the KV buckets and every stream), the Kubernetes events, the log of every process and every file of
 * the agents' state dirs is searched for the value, in clear and base64-encoded (as a Secret's `data` carries
 * it): it must be nowhere. Out of scope, by design, and listed in docs/reliability.md: etcd (the API server's
 * encryption at rest), the secret volume's tmpfs, and the container's own environment in dockerd.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { useEdgeStack } from '../../harness/edge.js';
import { reportFigures } from '../figures.js';

const stack = useEdgeStack();

/** Every regular file under `dir` (skipping sockets, fifos and what vanished meanwhile). */
function filesUnder(dir: string, skip: (p: string) => boolean = () => false): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (skip(p)) continue;
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  walk(dir);
  return out;
}

describe('chaos: a canary Secret value is nowhere in clear', () => {
  it('not in KV, streams, events, logs or agent state dirs', async () => {
    const s = stack();
    const canary = `canary-${crypto.randomBytes(12).toString('hex')}`;
    const needles = [Buffer.from(canary), Buffer.from(Buffer.from(canary).toString('base64'))];
    await s.kubectl(['create', 'secret', 'generic', 'canary', `--from-literal=token=${canary}`]);
    await s.kubectl(['apply', '-f', '-'], {
      input: stringify({
        apiVersion: 'compute.miloapis.com/v1alpha1',
        kind: 'Workload',
        metadata: { name: 'canary' },
        spec: {
          replicas: 3,
          template: {
            spec: {
              containers: [
                {
                  name: 'app',
                  image: 'nginx:latest',
                  env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'canary', key: 'token' } } }],
                  volumeMounts: [{ name: 'token', mountPath: '/etc/token', readOnly: true }],
                  resources: { requests: { cpu: '100m', memory: '32Mi' } },
                },
              ],
              volumes: [{ name: 'token', secret: { secretName: 'canary' } }],
            },
          },
        },
      }),
    });
    await s.waitForJsonPath(
      'workload.compute.miloapis.com canary',
      '{.status.readyReplicas}',
      (v) => v === '3',
      180_000,
    );
    // The value really reached the instances (else finding it nowhere proves nothing).
    const running = await s.kubectl(['get', 'instances', '-o', 'jsonpath={.items[*].status.providerID}']);
    expect(running.stdout.split(' ').filter((p) => p.startsWith('docker://'))).toHaveLength(3);
    const id = running.stdout.split(' ')[0]!.replace('docker://', '');
    const { docker } = await import('../../../deploy/stack/index.js');
    expect((await docker(['exec', id, 'cat', '/etc/token/token'])).stdout).toBe(canary);
    expect((await docker(['exec', id, 'sh', '-c', 'echo -n $TOKEN'])).stdout).toBe(canary);

    const hits: string[] = [];
    let searchedFiles = 0;
    let searchedBytes = 0;
    const search = (where: string, data: Buffer) => {
      searchedBytes += data.length;
      for (const n of needles) if (data.includes(n)) hits.push(where);
    };
    // The raw JetStream store (every KV bucket and stream), the nats-server's config and log.
    let storeHasIntent = false;
    for (const f of new Set([...filesUnder(s.nats.dir), ...filesUnder(s.nats.storeDir)])) {
      searchedFiles++;
      const data = fs.readFileSync(f);
      search(f, data);
      // The search does read the raw store: the canary Workload's intent (sealed values and all) is in it.
      if (data.includes('"workload":"canary"')) storeHasIntent = true;
    }
    expect(storeHasIntent).toBe(true);
    // Logs of every process: nats-server, kube-apiserver and etcd (their logs, not etcd's data), coordinator,
    // agents; and the agents' state dirs (intents copy, seal key, instance dirs).
    const etcdData = (p: string) => /\/etcd[^/]*\/(member|data)/.test(p) || p.endsWith('.db');
    for (const f of filesUnder(s.kube.dir, etcdData).filter((p) => p.endsWith('.log'))) {
      searchedFiles++;
      search(f, fs.readFileSync(f));
    }
    for (const p of [s.coordinator, ...s.agents.values()]) {
      for (const f of filesUnder(path.dirname(p.logFile))) {
        searchedFiles++;
        search(f, fs.readFileSync(f));
      }
    }
    // Events, as the API server has them.
    const events = await s.kubectl(['get', 'events', '-A', '-o', 'json']);
    search('kubernetes events', Buffer.from(events.stdout));
    // The Instances and Workload objects' status (what kubectl get -o yaml shows anyone with read access).
    const objects = await s.kubectl(['get', 'instances,workloads.compute.miloapis.com', '-A', '-o', 'json']);
    search('Instance and Workload objects', Buffer.from(objects.stdout));

    reportFigures({
      scenario: 'hostile/secret-canary',
      passed: hits.length === 0,
      searchedFiles,
      searchedBytes,
      hits: hits.length,
    });
    expect(hits).toEqual([]);
    expect(searchedFiles).toBeGreaterThan(10);
  }, 600_000);
});
