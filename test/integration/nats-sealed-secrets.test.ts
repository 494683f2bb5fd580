/**
 * Sealed secrets end to end on the real stack: a Secret referenced by a Workload reaches the container's
 * environment, while nothing that crosses NATS (every message on every subject, the intent in the KV bucket)
 * nor the agent's disk copy holds the value in clear.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Kvm } from '@nats-io/kv';
import { describe, expect, it } from 'vitest';
import { docker } from '../../deploy/stack/index.js';
import { connectNats } from '../../shared/nats/connect.js';
import { Subjects } from '../../shared/nats/subjects.js';
import { useEdgeStack } from '../harness/edge.js';
import { cleanup } from '../harness/index.js';
import { nginxWorkload } from '../harness/objects.js';

const stack = useEdgeStack();
const SECRET = 'sealed-e2e-value-7f3a';

describe('sealed secret values', () => {
  it('reach the container but never cross NATS or the agent disk in clear text', async () => {
    const s = stack();
    const nc = await connectNats({ servers: [s.nats.url], name: 'test', reconnectForever: false });
    cleanup(() => nc.close());
    const seen: string[] = [];
    nc.subscribe('>', {
      callback: (_e, m) => {
        seen.push(`${m.subject} ${new TextDecoder().decode(m.data)}`);
      },
    });
    await nc.flush();

    await s.kubectl(['create', 'namespace', 'sealed']);
    await s.kubectl([
      'create',
      'secret',
      'generic',
      'db',
      '-n',
      'sealed',
      `--from-literal=password=${SECRET}`,
    ]);
    await s.kubectl(['apply', '-n', 'sealed', '-f', '-'], {
      input: nginxWorkload({
        name: 'sealed-web',
        replicas: 1,
        env: [{ name: 'DB_PASSWORD', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } }],
      }),
    });
    await s.waitForJsonPath(
      'workload.compute.miloapis.com sealed-web -n sealed',
      '{.status.readyReplicas}',
      (v) => v === '1',
    );
    const inst = JSON.parse(
      (await s.kubectl(['get', 'instances', '-n', 'sealed', '-l', 'workload=sealed-web', '-o', 'json']))
        .stdout,
    ).items[0] as { spec: { host: string; location: string } };

    // In the container.
    const ids = (await docker(['ps', '-q', '--filter', `label=edgeplane.dev/host=${inst.spec.host}`])).stdout
      .split('\n')
      .filter(Boolean);
    const envs = await Promise.all(
      ids.map(async (id) => (await docker(['inspect', '--format', '{{json .Config.Env}}', id])).stdout),
    );
    expect(envs.some((e) => e.includes(`DB_PASSWORD=${SECRET}`))).toBe(true);

    // Not in the intent, which carries a sealed entry for exactly that host.
    const subjects = new Subjects();
    const kv = await new Kvm(nc).open(subjects.intentsBucket);
    const raw = (await kv.get(subjects.intentKey(inst.spec.location, 'sealed', 'sealed-web')))!.string();
    expect(raw).not.toContain(SECRET);
    const intent = JSON.parse(raw);
    expect(Object.keys(intent.sealed)).toEqual([inst.spec.host]);
    expect(intent.sealer).toMatch(/^X/);

    // Not in any message seen on NATS, not on the agent's disk.
    expect(seen.length).toBeGreaterThan(10);
    expect(seen.filter((m) => m.includes(SECRET))).toEqual([]);
    const stateDir = path.join(path.dirname(s.agents.get(inst.spec.host)!.logFile), 'state');
    expect(readFileSync(path.join(stateDir, 'intents.json'), 'utf8')).not.toContain(SECRET);
    expect(readFileSync(path.join(stateDir, 'intents.json'), 'utf8')).toContain(
      intent.sealed[inst.spec.host],
    );
  });
});
