/**
 * Networks end to end on the dev stack's code (useEdgeStack: real nats-server, kube-apiserver, coordinator and
 * three agents, each a network host of its own — a namespace on an underlay that exists only inside namespaces
 * the stack created). With production-network from examples/prerequisites/, an instance in us-central1-a
 * reaches one in eu-west-1a by its networkIP from inside its gVisor container, over the VXLAN overlay between
 * the two hosts; an instance of another Network with the same CIDR reaches neither, and is not reached.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { docker, REPO_DIR } from '../../deploy/stack/index.js';
import { useEdgeStack } from '../harness/edge.js';
import { waitFor } from '../harness/index.js';

const stack = useEdgeStack();

/** A Workload of one replica in `zone`, attached to `network`, whose httpd on :80 answers with `name`. */
function workload(name: string, zone: string, network: string): string {
  return `apiVersion: compute.datumapis.com/v1alpha1
kind: Workload
metadata:
  name: ${name}
spec:
  replicas: 1
  placement:
    nodeSelector:
      topology.kubernetes.io/zone: ${zone}
  template:
    spec:
      image: nginx:latest
      command: ['sh', '-c', 'mkdir -p /w && echo ${name} >/w/index.html && exec httpd -f -p 80 -h /w']
      networkInterfaces:
        - networkRef:
            name: ${network}
---
`;
}

/** Another Network with production-network's CIDR (examples/prerequisites/networks.yaml: 10.0.0.0/16). */
const ISOLATED = `apiVersion: compute.datumapis.com/v1alpha1
kind: Network
metadata:
  name: isolated-network
spec:
  ipv4Cidr: 10.0.0.0/16
---
`;

interface Placed {
  host: string;
  networkIP: string;
  container: string;
}

/** Where the one instance of `workload` runs, its networkIP, and its app container (not the netns holder). */
async function placed(workload: string): Promise<Placed> {
  const s = stack();
  const [host = '', networkIP = ''] = (
    await s.waitForJsonPath(
      `instances -l workload=${workload}`,
      '{.items[0].spec.host} {.items[0].status.networkInterfaces[0].assignments.networkIP}',
      (v) => /^\S+ \d+\.\d+\.\d+\.\d+$/.test(v.trim()),
      300_000,
    )
  )
    .trim()
    .split(' ');
  const container = await waitFor(
    `the container of ${workload}`,
    async () => {
      const ps = await docker([
        'ps',
        '--filter',
        `label=edgeplane.dev/host=${host}`,
        '--filter',
        `label=edgeplane.dev/workload=${workload}`,
        '--format',
        '{{.ID}} {{.Label "edgeplane.dev/role"}}',
      ]);
      return ps.stdout
        .split('\n')
        .map((l) => l.trim().split(' '))
        .find(([id, role]) => id && !role)?.[0];
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
  return { host, networkIP, container };
}

/** `GET /` of `address`:80 from inside `container` (busybox nc; its wget is unreliable under runsc): the body. */
async function fetchFrom(container: string, address: string): Promise<string> {
  const r = await docker([
    'exec',
    container,
    'sh',
    '-c',
    `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${address} 80 | tail -1`,
  ]);
  return r.stdout.trim();
}

/**
 * `address` answers `expected` from inside `container`. An answer is retried for a minute: one `docker exec`
 * into a gVisor sandbox can come back empty on a loaded machine. No answer ('') is checked once: silence cannot
 * be told from a slow exec, and the answering cases around it show the path works.
 */
async function expectAnswer(container: string, address: string, expected: string): Promise<void> {
  if (expected === '') {
    expect(await fetchFrom(container, address)).toBe('');
    return;
  }
  let last = '';
  await waitFor(
    `${address} answering ${expected}`,
    async () => {
      last = await fetchFrom(container, address);
      return last === expected;
    },
    { timeoutMs: 60_000, intervalMs: 1000 },
  ).catch(() => undefined);
  expect(last).toBe(expected);
}

describe('Networks on the dev stack', () => {
  it('an instance in us-central1-a reaches one in eu-west-1a by networkIP; another Network with the same CIDR cannot', async () => {
    const s = stack();
    await s.kubectl(['apply', '-f', path.join(REPO_DIR, 'examples/prerequisites/')]);
    await s.kubectl(['apply', '-f', '-'], {
      input:
        ISOLATED +
        workload('net-us', 'us-central1-a', 'production-network') +
        workload('net-eu', 'eu-west-1a', 'production-network') +
        workload('net-iso', 'us-central1-b', 'isolated-network'),
    });
    for (const w of ['net-us', 'net-eu', 'net-iso']) {
      await s.waitForJsonPath(`workload ${w}`, '{.status.readyReplicas}', (v) => v === '1', 300_000);
    }
    const [us, eu, iso] = [await placed('net-us'), await placed('net-eu'), await placed('net-iso')];
    // Three different hosts, so every exchange below crosses the underlay between two host namespaces.
    expect(new Set([us.host, eu.host, iso.host]).size).toBe(3);
    expect(us.host).toContain('us-central1-a');
    expect(eu.host).toContain('eu-west-1a');
    for (const p of [us, eu, iso]) expect(p.networkIP).toMatch(/^10\.0\.\d+\.\d+$/);

    // Across locations on one Network, both ways (the first exchange may wait for ARP over the overlay).
    await waitFor(
      'net-us reaches net-eu by networkIP',
      async () => (await fetchFrom(us.container, eu.networkIP)) === 'net-eu',
      {
        timeoutMs: 120_000,
        intervalMs: 1000,
      },
    );
    await expectAnswer(eu.container, us.networkIP, 'net-us');

    // The other Network, same CIDR: nothing crosses either way. Its IPAM is its own, so its instance may hold
    // the very address a production-network instance holds: on each Network that address is then its own
    // instance's, and answers with that name.
    const production = new Map([
      [us.networkIP, 'net-us'],
      [eu.networkIP, 'net-eu'],
    ]);
    for (const target of [us, eu]) {
      await expectAnswer(
        iso.container,
        target.networkIP,
        target.networkIP === iso.networkIP ? 'net-iso' : '',
      );
      await expectAnswer(target.container, iso.networkIP, production.get(iso.networkIP) ?? '');
    }
    // The isolated instance is up and answers on its own address (the empty answers are not a dead server).
    await expectAnswer(iso.container, iso.networkIP, 'net-iso');
  }, 900_000);
});
