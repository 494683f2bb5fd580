/**
 * Every kubectl command of the Workload docs, with the real kubectl against the real kube-apiserver, coordinator,
 * NATS and agents: validation at apply time, `explain`, every example manifest of the docs (first blocked on what
 * it references, then READY), get / -o yaml / custom-columns / -w, describe, scale, patch, edit, set image,
 * instances and events, the three API groups, rolling updates and deletion.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { docker, ensureImage, REPO_DIR } from '../../deploy/stack/index.js';
import { run } from '../../deploy/stack/proc.js';
import { EXAMPLE_IMAGES } from '../../examples/images.js';
import { useEdgeStack } from '../harness/edge.js';
import { appContainerIds, tempDir } from '../harness/index.js';

const stack = useEdgeStack();
const EXAMPLES = path.join(REPO_DIR, 'examples');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  for (const [tag, spec] of Object.entries(EXAMPLE_IMAGES)) await ensureImage(tag, spec);
}, 600_000);

/** The Workload manifests of examples/: file, group, namespace, name, replicas. */
const examples = readdirSync(EXAMPLES)
  .filter((f) => f.endsWith('.yaml'))
  .map((file) => {
    const text = readFileSync(path.join(EXAMPLES, file), 'utf8');
    const group = /^apiVersion: ([^/\s]+)\//m.exec(text)![1]!;
    const name = /^ {2}name: (\S+)/m.exec(text)![1]!;
    const namespace = /^ {2}namespace: (\S+)/m.exec(text)?.[1] ?? 'default';
    const replicas = Number(/^ {2}replicas: (\d+)/m.exec(text)![1]);
    return { file, group, name, namespace, replicas, resource: `workload.${group}` };
  });

function example(file: string) {
  const e = examples.find((x) => x.file === file);
  if (!e) throw new Error(`no example ${file}`);
  return e;
}

/**
 * IDs of the app containers (running or not) of a Workload's instances on this stack's hosts; not the network
 * namespace holders of instances with Network attachments (label edgeplane.dev/role).
 */
async function containersOf(namespace: string, workload: string): Promise<string[]> {
  const out: string[] = [];
  for (const host of stack().hosts) {
    const r = await docker([
      'ps',
      '-a',
      '--format',
      '{{.ID}} {{.Label "edgeplane.dev/role"}}',
      '--filter',
      `label=edgeplane.dev/host=${host}`,
      '--filter',
      `label=edgeplane.dev/namespace=${namespace}`,
      '--filter',
      `label=edgeplane.dev/workload=${workload}`,
    ]);
    out.push(...appContainerIds(r.stdout));
  }
  return out;
}

/** `<running> <image>` of each container of a Workload's instances, e.g. `true nginx:1.26`. */
async function imagesOf(namespace: string, workload: string): Promise<string[]> {
  return Promise.all(
    (await containersOf(namespace, workload)).map(async (id) =>
      (await docker(['inspect', '--format', '{{.State.Running}} {{.Config.Image}}', id])).stdout.trim(),
    ),
  );
}

/** The reasons of the events about the object of that name (any kind), space-separated. */
async function eventReasons(name: string): Promise<string> {
  return (
    await stack().kubectl([
      'get',
      'events',
      '--field-selector',
      `involvedObject.name=${name}`,
      '-o',
      'jsonpath={.items[*].reason}',
    ])
  ).stdout;
}

/** Polls until the Workload's status reflects its current generation with every instance updated and ready. */
async function waitRolledOut(
  resource: string,
  namespace: string,
  replicas: number,
  timeoutMs = 240_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const o = JSON.parse((await stack().kubectl(['get', resource, '-n', namespace, '-o', 'json'])).stdout);
    const st = o.status ?? {};
    if (
      st.observedGeneration === o.metadata.generation &&
      st.replicas === replicas &&
      st.updatedReplicas === replicas &&
      st.readyReplicas === replicas
    ) {
      return;
    }
    if (Date.now() > deadline) throw new Error(`${resource} not rolled out: ${JSON.stringify(st)}`);
    await sleep(300);
  }
}

/** The value of an environment variable in each running container of a Workload (sorted). */
async function envOf(namespace: string, workload: string, variable: string): Promise<string[]> {
  const out: string[] = [];
  for (const id of await containersOf(namespace, workload)) {
    const r = await docker(['inspect', '--format', '{{.State.Running}} {{json .Config.Env}}', id]);
    const [running, env] = [
      r.stdout.slice(0, r.stdout.indexOf(' ')),
      r.stdout.slice(r.stdout.indexOf(' ') + 1),
    ];
    if (running !== 'true') continue;
    const entry = (JSON.parse(env) as string[]).find((e) => e.startsWith(`${variable}=`));
    if (entry) out.push(entry.slice(variable.length + 1));
  }
  return out.sort();
}

describe('validation at apply time', () => {
  const bad = (spec: string) => `apiVersion: compute.datumapis.com/v1alpha1
kind: Workload
metadata:
  name: bad
spec:
${spec}`;
  it.each([
    [
      'negative replicas',
      '  replicas: -1\n  template:\n    spec:\n      image: x',
      'spec.replicas',
      'greater than or equal to 0',
    ],
    [
      'maxSkew 0',
      '  template:\n    spec:\n      image: x\n  placement:\n    topologySpreadConstraints:\n    - maxSkew: 0\n      topologyKey: zone\n      whenUnsatisfiable: DoNotSchedule',
      'spec.placement.topologySpreadConstraints[0].maxSkew',
      'greater than or equal to 1',
    ],
    [
      'an unknown whenUnsatisfiable',
      '  template:\n    spec:\n      image: x\n  placement:\n    topologySpreadConstraints:\n    - maxSkew: 1\n      topologyKey: zone\n      whenUnsatisfiable: Sometimes',
      'spec.placement.topologySpreadConstraints[0].whenUnsatisfiable',
      'supported values: "DoNotSchedule", "ScheduleAnyway"',
    ],
    [
      'neither image nor containers',
      '  template:\n    spec:\n      machineType: e2-micro',
      'spec.template.spec',
      'template.spec needs image or containers',
    ],
    [
      'both image and containers',
      '  template:\n    spec:\n      image: x\n      containers: [{name: a, image: b}]',
      'spec.template.spec',
      'takes image or containers, not both',
    ],
    [
      'env with value and valueFrom',
      '  template:\n    spec:\n      image: x\n      env: [{name: A, value: x, valueFrom: {secretKeyRef: {name: s, key: k}}}]',
      'spec.template.spec.env[0]',
      'set value or valueFrom, not both',
    ],
    [
      'a bad quantity',
      '  template:\n    spec:\n      image: x\n      resources: {requests: {cpu: lots}}',
      'spec.template.spec.resources.requests.cpu',
      'should match',
    ],
    [
      'an unknown machine type',
      '  template:\n    spec:\n      image: x\n      machineType: z9-huge',
      'spec.template.spec.machineType',
      'should match',
    ],
    [
      'duplicate container names',
      '  template:\n    spec:\n      containers: [{name: a, image: b}, {name: a, image: c}]',
      'spec.template.spec.containers',
      'container names must be unique',
    ],
    [
      'a mount of no volume',
      '  template:\n    spec:\n      image: x\n      volumeMounts: [{name: nope, mountPath: /x}]',
      'spec.template.spec',
      'every volumeMounts[].name must name one of volumes',
    ],
    [
      'a port out of range',
      '  template:\n    spec:\n      containers: [{name: a, image: b, ports: [{containerPort: 70000}]}]',
      'spec.template.spec.containers[0].ports[0].containerPort',
      'less than or equal to 65535',
    ],
    [
      'a selector that does not match the template labels',
      '  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: api}}\n    spec:\n      image: x',
      'spec.selector',
      'selector.matchLabels must match template.metadata.labels',
    ],
    [
      'a bad maxUnavailable',
      '  strategy: {rollingUpdate: {maxUnavailable: lots}}\n  template:\n    spec:\n      image: x',
      'spec.strategy.rollingUpdate.maxUnavailable',
      'should match',
    ],
  ])('rejects %s, naming the field', async (_what, spec, field, message) => {
    const r = await stack().kubectl(['apply', '-f', '-'], { input: bad(spec), allowFail: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(field);
    expect(r.stderr).toContain(message);
    const left = await stack().kubectl(['get', 'workloads', '-o', 'name']);
    expect(left.stdout).not.toContain('/bad');
  });

  it('explains every field (kubectl explain)', async () => {
    const s = stack();
    const placement = (await s.kubectl(['explain', 'workload.spec.placement'])).stdout;
    expect(placement).toContain('Where instances may and should run.');
    expect(placement).toMatch(/topologySpreadConstraints\s+<\[\]Object>/);
    const tsc = (
      await s.kubectl(['explain', 'workload.spec.placement.topologySpreadConstraints.whenUnsatisfiable'])
    ).stdout;
    expect(tsc).toContain('DoNotSchedule');
    const phase = (await s.kubectl(['explain', 'workload.status.phase'])).stdout;
    for (const value of ['Pending', 'Provisioning', 'Running', 'Failed', 'Deleting'])
      expect(phase).toContain(value);
    expect((await s.kubectl(['explain', 'network.spec.subnets'])).stdout).toContain('subnetRef');
    expect((await s.kubectl(['explain', 'instance.status'])).stdout).toContain('DESCRIPTION');
  });
});

describe('the example manifests of the docs', { timeout: 600_000 }, () => {
  it('apply unchanged; until what they reference exists, their status names it', async () => {
    const s = stack();
    await s.kubectl(['apply', '-f', path.join(EXAMPLES, 'prerequisites/namespaces.yaml')]);
    for (const e of examples) {
      const r = await s.kubectl(['apply', '-f', path.join(EXAMPLES, e.file)]);
      expect(r.stdout.trim()).toBe(`${e.resource}/${e.name} created`);
    }
    const missing: Record<string, string[]> = {
      'backend-api.yaml': ['Network backend-network', 'Network data-network', 'Secret db-credentials'],
      'api-server.yaml': ['Network prod-network', 'Secret db-credentials'],
      'web-app.yaml': ['Network production-network'],
      'web-frontend.yaml': ['Network public-network'],
      'worker.yaml': ['Network backend-network'],
    };
    for (const [file, names] of Object.entries(missing)) {
      const e = example(file);
      const message = await s.waitForJsonPath(
        `${e.resource} ${e.name} -n ${e.namespace}`,
        '{.status.conditions[?(@.type=="Progressing")].message}',
        (v) => v.startsWith('waiting for'),
        60_000,
      );
      for (const n of names) expect(message).toContain(n);
      expect(
        await s
          .kubectl(['get', e.resource, e.name, '-n', e.namespace, '-o', 'jsonpath={.status.phase}'])
          .then((r) => r.stdout),
      ).toBe('Pending');
      const reason = await s.kubectl([
        'get',
        e.resource,
        e.name,
        '-n',
        e.namespace,
        '-o',
        'jsonpath={.status.conditions[?(@.type=="Available")].reason}',
      ]);
      expect(reason.stdout).toBe('MissingReferences');
      // Nothing is placed while it waits.
      expect(
        (
          await s.kubectl(['get', 'instances', '-n', e.namespace, '-l', `workload=${e.name}`, '-o', 'name'])
        ).stdout.trim(),
      ).toBe('');
    }
    expect(await eventReasons('backend-api')).toContain('MissingReferences');
  });

  it('reach READY once the Secrets and Networks exist, with the placement rules honoured', async () => {
    const s = stack();
    await s.kubectl(['apply', '-f', path.join(EXAMPLES, 'prerequisites/')]);
    for (const e of examples) {
      await s.waitForJsonPath(
        `${e.resource} ${e.name} -n ${e.namespace}`,
        '{.status.readyReplicas}',
        (v) => v === String(e.replicas),
        300_000,
      );
      const status = JSON.parse(
        (await s.kubectl(['get', e.resource, e.name, '-n', e.namespace, '-o', 'jsonpath={.status}'])).stdout,
      );
      expect(status).toMatchObject({ phase: 'Running', replicas: e.replicas, readyReplicas: e.replicas });
    }
    type Item = { spec: { location: string; host: string } };
    const locationsOf = async (ns: string, name: string) =>
      (
        JSON.parse(
          (await s.kubectl(['get', 'instances', '-n', ns, '-l', `workload=${name}`, '-o', 'json'])).stdout,
        ).items as Item[]
      ).map((i) => i.spec.location);
    // Networks count the Workloads attached to them.
    const nets = (
      await s.kubectl([
        'get',
        'networks',
        '-A',
        '-o',
        'custom-columns=NAME:.metadata.name,N:.status.workloads',
        '--no-headers',
      ])
    ).stdout;
    expect(nets).toMatch(/backend-network\s+2\n/); // backend-api and worker
    expect(nets).toMatch(/prod-network\s+1\n/);
    // backend-api: region us-central1 only, spread over its two zones with skew at most 1.
    const backend = await locationsOf('default', 'backend-api');
    expect(new Set(backend)).toEqual(new Set(['us-central1-a', 'us-central1-b']));
    const a = backend.filter((l) => l === 'us-central1-a').length;
    expect(Math.abs(a - (backend.length - a))).toBeLessThanOrEqual(1);
    // my-app: providers [gcp], regions [us-central1].
    for (const l of await locationsOf('my-project', 'my-app')) expect(l).toMatch(/^us-central1-/);
    // The sidecar example runs both containers in one instance.
    const sidecar = JSON.parse(
      (
        await s.kubectl([
          'get',
          'instances',
          '-n',
          'project-myproject',
          '-l',
          'workload=app-with-sidecar',
          '-o',
          'jsonpath={.items[0].status.containers}',
        ])
      ).stdout,
    ) as Array<{ name: string }>;
    expect(sidecar.map((c) => c.name).sort()).toEqual(['app', 'log-collector']);
    // The Secret's value reached the instances (sealed per host on the way), in the right namespace.
    expect(await envOf('default', 'backend-api', 'DATABASE_URL')).toEqual(
      Array(5).fill('postgres://backend:example@127.0.0.1:5432/backend'),
    );
    expect(await envOf('project-myproject', 'api-server', 'DATABASE_URL')).toEqual(
      Array(2).fill('postgres://api:example@127.0.0.1:5432/api'),
    );
  });

  it('a changed Secret rolls the instances that use it onto the new value', async () => {
    const s = stack();
    await s.kubectl([
      'patch',
      'secret',
      'db-credentials',
      '-n',
      'project-myproject',
      '--type=merge',
      '-p',
      '{"stringData":{"url":"postgres://api:rotated@127.0.0.1:5432/api"}}',
    ]);
    const deadline = Date.now() + 180_000;
    for (;;) {
      const env = await envOf('project-myproject', 'api-server', 'DATABASE_URL');
      const ready = (
        await s.kubectl([
          'get',
          'workload.compute.miloapis.com',
          'api-server',
          '-n',
          'project-myproject',
          '-o',
          'jsonpath={.status.readyReplicas}',
        ])
      ).stdout;
      if (
        ready === '2' &&
        env.length === 2 &&
        env.every((v) => v === 'postgres://api:rotated@127.0.0.1:5432/api')
      )
        break;
      if (Date.now() > deadline)
        throw new Error(`api-server did not roll onto the new Secret value: ${env.join(', ')}`);
      await sleep(500);
    }
    // The Secret of the other namespace did not change, so backend-api was left alone.
    expect(await envOf('default', 'backend-api', 'DATABASE_URL')).toEqual(
      Array(5).fill('postgres://backend:example@127.0.0.1:5432/backend'),
    );
  });

  it('delete: every example goes, with its containers', async () => {
    const s = stack();
    for (const e of examples) {
      if (e.file === 'web-app.yaml') continue; // the workflows below use it
      await s.kubectl(['delete', e.resource, e.name, '-n', e.namespace, '--timeout=120s'], {
        timeoutMs: 130_000,
      });
      expect(await containersOf(e.namespace, e.name)).toEqual([]);
    }
    const left = await s.kubectl(['get', 'instances,workloaddeployments', '-A', '-o', 'name']);
    expect(
      left.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .every((n) => n.includes('web-app-')),
    ).toBe(true);
  });
});

describe('the kubectl workflows of the docs, on web-app', { timeout: 300_000 }, () => {
  it('get: the columns of the guide, -o yaml, custom columns and jsonpath of the reference', async () => {
    const s = stack();
    const get = (await s.kubectl(['get', 'workload', 'web-app'])).stdout;
    expect(get).toMatch(/^NAME\s+REPLICAS\s+READY\s+PHASE\s+AGE\n/);
    expect(get).toMatch(/\nweb-app\s+3\s+3\s+Running\s+\d+[sm]/);
    const yaml = (await s.kubectl(['get', 'workload', 'web-app', '-o', 'yaml'])).stdout;
    expect(yaml).toContain('kind: Workload');
    expect(yaml).toContain('image: nginx:latest');
    expect(yaml).toMatch(/readyReplicas: 3/);
    const columns = (
      await s.kubectl([
        'get',
        'workloads',
        '-o',
        'custom-columns=NAME:.metadata.name,REPLICAS:.status.replicas,READY:.status.readyReplicas,PHASE:.status.phase',
      ])
    ).stdout;
    expect(columns).toMatch(/^NAME\s+REPLICAS\s+READY\s+PHASE\n/);
    expect(columns).toMatch(/\nweb-app\s+3\s+3\s+Running/);
    const status = JSON.parse(
      (await s.kubectl(['get', 'workload', 'web-app', '-o', 'jsonpath={.status}'])).stdout,
    );
    expect(status.locations).toHaveLength(3);
    expect(status.observedGeneration).toBeGreaterThan(0);
  });

  it('describe workload, get instances -l, describe instance, get events --field-selector', async () => {
    const s = stack();
    const describe = (await s.kubectl(['describe', 'workload', 'web-app'])).stdout;
    expect(describe).toMatch(/Phase:\s+Running/);
    expect(describe).toMatch(/Events:[\s\S]*Placed/);
    const names = (await s.kubectl(['get', 'instances', '-l', 'workload=web-app', '-o', 'name'])).stdout
      .trim()
      .split('\n')
      .sort();
    expect(names).toEqual([
      'instance.compute.datumapis.com/web-app-eu-west-1a-0',
      'instance.compute.datumapis.com/web-app-us-central1-a-0',
      'instance.compute.datumapis.com/web-app-us-central1-b-0',
    ]);
    const table = (await s.kubectl(['get', 'instances', '-l', 'workload=web-app'])).stdout;
    expect(table).toMatch(/^NAME\s+WORKLOAD\s+LOCATION\s+HOST\s+PHASE\s+NETWORK IP\s+AGE/);
    // web-app attaches to production-network (10.0.0.0/16): each instance shows its address there.
    const rows = table.trim().split('\n').slice(1);
    expect(rows).toHaveLength(3);
    for (const row of rows) expect(row).toMatch(/\s10\.0\.\d+\.\d+\s/);
    const inst = (await s.kubectl(['describe', 'instance', 'web-app-us-central1-a-0'])).stdout;
    expect(inst).toMatch(/Phase:\s+Running/);
    expect(inst).toMatch(/Host:\s+e2e-/);
    expect(inst).toMatch(/Events:[\s\S]*Started/);
    const events = (await s.kubectl(['get', 'events', '--field-selector', 'involvedObject.name=web-app']))
      .stdout;
    expect(events).toMatch(/Placed/);
    expect(events).toMatch(/MissingReferences/);
  });

  it('get --watch prints the changes that kubectl scale makes', async () => {
    const s = stack();
    const watch = spawn(
      'kubectl',
      ['--kubeconfig', s.kube.kubeconfigPath, 'get', 'workload', 'web-app', '--watch', '--no-headers'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    watch.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    try {
      for (let i = 0; i < 40 && !out.includes('web-app'); i++) await sleep(250);
      await s.kubectl(['scale', 'workload', 'web-app', '--replicas=4']);
      for (let i = 0; i < 240 && !/web-app\s+4\s+4\s+Running/.test(out); i++) await sleep(500);
    } finally {
      watch.kill('SIGTERM');
    }
    expect(out).toMatch(/web-app\s+3\s+3\s+Running/);
    expect(out).toMatch(/web-app\s+4\s+3\s+/);
    expect(out).toMatch(/web-app\s+4\s+4\s+Running/);
  });

  it('patch (merge) scales down, removing only what it must', async () => {
    const s = stack();
    const before = (
      await s.kubectl([
        'get',
        'instances',
        '-l',
        'workload=web-app',
        '-o',
        'jsonpath={.items[*].metadata.uid}',
      ])
    ).stdout.split(' ');
    // `kubectl patch` without --type sends a strategic merge patch, which the API server refuses for every
    // custom resource; --type=merge is the form that works (docs/kubectl.md).
    const smp = await s.kubectl(['patch', 'workload', 'web-app', '-p', '{"spec":{"replicas":3}}'], {
      allowFail: true,
    });
    expect(smp.stderr).toContain('strategic-merge-patch+json is not supported');
    await s.kubectl(['patch', 'workload', 'web-app', '--type=merge', '-p', '{"spec":{"replicas":3}}']);
    await s.waitForJsonPath('workload web-app', '{.status.replicas}', (v) => v === '3');
    const after = (
      await s.kubectl([
        'get',
        'instances',
        '-l',
        'workload=web-app',
        '-o',
        'jsonpath={.items[*].metadata.uid}',
      ])
    ).stdout.split(' ');
    expect(after).toHaveLength(3);
    for (const uid of after) expect(before).toContain(uid);
    for (let i = 0; i < 60 && (await containersOf('default', 'web-app')).length !== 3; i++) await sleep(500);
    expect(await containersOf('default', 'web-app')).toHaveLength(3);
  });

  it('edit, non-interactively (KUBE_EDITOR), scales', async () => {
    const s = stack();
    const dir = tempDir('edgeplane-edit-');
    const editor = path.join(dir, 'editor.sh');
    writeFileSync(editor, '#!/bin/sh\nsed -i "s/^  replicas: 3$/  replicas: 2/" "$1"\n', { mode: 0o755 });
    const r = await run('kubectl', ['--kubeconfig', s.kube.kubeconfigPath, 'edit', 'workload', 'web-app'], {
      env: { KUBE_EDITOR: editor },
      timeoutMs: 60_000,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('workload.compute.datumapis.com/web-app edited');
    await s.waitForJsonPath('workload web-app', '{.status.readyReplicas}', (v) => v === '2');
    expect(
      (await s.kubectl(['get', 'workload', 'web-app', '-o', 'jsonpath={.status.replicas}'])).stdout,
    ).toBe('2');
  });

  it('set image: kubectl refuses custom resources; a merge patch of the image rolls out instance by instance, never below 3 ready', async () => {
    const s = stack();
    await s.kubectl(['scale', 'workload', 'web-app', '--replicas=3']);
    await s.waitForJsonPath('workload web-app', '{.status.readyReplicas}', (v) => v === '3');
    await s.waitForJsonPath('workload web-app', '{.status.replicas}', (v) => v === '3');
    const set = await s.kubectl(['set', 'image', 'workload/web-app', 'nginx=nginx:1.26'], {
      allowFail: true,
    });
    expect(set.code).not.toBe(0);
    await s.kubectl([
      'patch',
      'workload',
      'web-app',
      '--type=merge',
      '-p',
      '{"spec":{"template":{"spec":{"image":"nginx:1.26"}}}}',
    ]);
    // Sample while the update runs. Defaults: maxSurge 25% of 3 rounds up to 1, maxUnavailable rounds down to 0:
    // a surge instance on the new template stands in before a location switches, so at least 3 are always ready.
    let fewestReady = Number.POSITIVE_INFINITY;
    let mostInstances = 0;
    const trace: string[] = [];
    const deadline = Date.now() + 240_000;
    for (;;) {
      const items = JSON.parse(
        (await s.kubectl(['get', 'instances', '-l', 'workload=web-app', '-o', 'json'])).stdout,
      ).items as Array<{
        spec: { templateHash: string };
        status?: { ready?: boolean };
      }>;
      const status = JSON.parse(
        (await s.kubectl(['get', 'workload', 'web-app', '-o', 'jsonpath={.status}'])).stdout,
      );
      fewestReady = Math.min(fewestReady, items.filter((i) => i.status?.ready).length, status.readyReplicas);
      trace.push(
        `${status.readyReplicas}/${status.replicas} ${items.map((i) => `${(i as { metadata?: { name: string } }).metadata?.name}:${i.spec.templateHash.slice(0, 4)}:${i.status?.ready ? 'R' : '-'}`).join(' ')}`,
      );
      mostInstances = Math.max(mostInstances, items.length);
      const generation = Number(
        (await s.kubectl(['get', 'workload', 'web-app', '-o', 'jsonpath={.metadata.generation}'])).stdout,
      );
      if (
        status.observedGeneration === generation &&
        status.replicas === 3 &&
        status.updatedReplicas === 3 &&
        status.readyReplicas === 3 &&
        items.length === 3
      ) {
        break;
      }
      if (Date.now() > deadline) throw new Error(`rollout did not finish: ${JSON.stringify(status)}`);
      await sleep(200);
    }
    expect(fewestReady, trace.join('\n')).toBeGreaterThanOrEqual(3);
    // Never more than one surge instance at a time (maxSurge 1). That a surge happened at all is shown by the
    // events below: sampling can miss a short-lived state on a loaded machine, events cannot.
    expect(mostInstances, trace.join('\n')).toBeLessThanOrEqual(4);
    // The surge instance's container goes once its host has stopped it.
    for (let i = 0; i < 40 && (await containersOf('default', 'web-app')).length > 3; i++) await sleep(250);
    const images = await imagesOf('default', 'web-app');
    expect(images.filter((i) => i.startsWith('true'))).toEqual([
      'true nginx:1.26',
      'true nginx:1.26',
      'true nginx:1.26',
    ]);
    const reasons = await eventReasons('web-app');
    expect(reasons).toContain('SurgeStarted');
    expect(reasons).toContain('RollingUpdate');
    // Every surge instance is gone, on both sides.
    expect(
      (await s.kubectl(['get', 'instances', '-l', 'edgeplane.dev/surge=true', '-o', 'name'])).stdout.trim(),
    ).toBe('');
    expect(await containersOf('default', 'web-app')).toHaveLength(3);
  });

  it('four instances on one host roll one by one: never below 4 ready (maxUnavailable 0), never above 5 (maxSurge 1)', async () => {
    const s = stack();
    const manifest = (image: string) => `apiVersion: compute.datumapis.com/v1alpha1
kind: Workload
metadata:
  name: packed
spec:
  replicas: 4
  strategy:
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  placement:
    nodeSelector:
      topology.kubernetes.io/zone: us-central1-b
  template:
    spec:
      image: ${image}
      ports: [{name: http, containerPort: 80}]
`;
    await s.kubectl(['apply', '-f', '-'], { input: manifest('nginx:latest') });
    await waitRolledOut('workload/packed', 'default', 4);
    await s.kubectl(['apply', '-f', '-'], { input: manifest('nginx:1.26') });
    let fewestReady = Number.POSITIVE_INFINITY;
    let mostInstances = 0;
    let sawMixed = false;
    const trace: string[] = [];
    const deadline = Date.now() + 240_000;
    for (;;) {
      const items = JSON.parse(
        (await s.kubectl(['get', 'instances', '-l', 'workload=packed', '-o', 'json'])).stdout,
      ).items as Array<{
        metadata: { name: string };
        spec: { templateHash: string };
        status?: { ready?: boolean };
      }>;
      const o = JSON.parse((await s.kubectl(['get', 'workload', 'packed', '-o', 'json'])).stdout);
      const st = o.status ?? {};
      fewestReady = Math.min(fewestReady, items.filter((i) => i.status?.ready).length, st.readyReplicas ?? 0);
      mostInstances = Math.max(mostInstances, items.length);
      if (new Set(items.map((i) => i.spec.templateHash)).size > 1) sawMixed = true;
      trace.push(
        `${st.readyReplicas}/${st.replicas} ${items.map((i) => `${i.metadata.name}:${i.spec.templateHash.slice(0, 4)}:${i.status?.ready ? 'R' : '-'}`).join(' ')}`,
      );
      if (
        st.observedGeneration === o.metadata.generation &&
        st.updatedReplicas === 4 &&
        st.readyReplicas === 4 &&
        items.length === 4
      )
        break;
      if (Date.now() > deadline) throw new Error(`rollout did not finish:\n${trace.join('\n')}`);
      await sleep(200);
    }
    expect(fewestReady, trace.join('\n')).toBeGreaterThanOrEqual(4);
    expect(mostInstances, trace.join('\n')).toBeLessThanOrEqual(5);
    // Instances of one host ran two templates side by side: the host was not switched as a whole.
    expect(sawMixed, trace.join('\n')).toBe(true);
    for (let i = 0; i < 40 && (await containersOf('default', 'packed')).length > 4; i++) await sleep(250);
    const images = await imagesOf('default', 'packed');
    expect(images).toEqual(Array(4).fill('true nginx:1.26'));
    // The WorkloadDeployment no longer keeps the old template.
    expect(
      (
        await s.kubectl([
          'get',
          'workloaddeployment',
          'packed-us-central1-b',
          '-o',
          'jsonpath={.spec.revisions}',
        ])
      ).stdout.replace(/\[\]/, ''),
    ).toBe('');
    await s.kubectl(['delete', 'workload', 'packed', '--timeout=120s'], { timeoutMs: 130_000 });
  });

  it('delete returns once every instance is stopped and removed', async () => {
    const s = stack();
    await s.kubectl(['delete', 'workload', 'web-app', '--timeout=120s'], { timeoutMs: 130_000 });
    expect(await containersOf('default', 'web-app')).toEqual([]);
    expect((await s.kubectl(['get', 'instances,workloaddeployments', '-o', 'name'])).stdout.trim()).toBe('');
    const events = await eventReasons('web-app');
    expect(events).toContain('Deleting');
    expect(events).toContain('Deleted');
  });
});

describe('three API groups', { timeout: 300_000 }, () => {
  it('kubectl resolves `workload` to compute.datumapis.com; the other groups are addressed by their full name', async () => {
    const s = stack();
    const e = example('milo-web-app.yaml');
    await s.kubectl(['apply', '-f', path.join(EXAMPLES, e.file)]);
    const short = await s.kubectl(['get', 'workload', 'web-app', '-n', e.namespace], { allowFail: true });
    expect(short.stderr).toContain('workloads.compute.datumapis.com "web-app" not found');
    await s.waitForJsonPath(
      `workload.compute.miloapis.com web-app -n ${e.namespace}`,
      '{.status.readyReplicas}',
      (v) => v === '3',
    );
    const all = (await s.kubectl(['get', 'edgeplane', '-n', e.namespace, '-o', 'name'])).stdout;
    expect(all).toContain('workload.compute.miloapis.com/web-app');
    // Scale and patch work the same through the full name.
    await s.kubectl(['scale', 'workload.compute.miloapis.com', 'web-app', '-n', e.namespace, '--replicas=2']);
    await s.waitForJsonPath(
      `workload.compute.miloapis.com web-app -n ${e.namespace}`,
      '{.status.replicas}',
      (v) => v === '2',
    );
    await s.kubectl([
      'patch',
      'workload.compute.miloapis.com',
      'web-app',
      '-n',
      e.namespace,
      '--type=json',
      '-p',
      '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:1.26"}]',
    ]);
    await waitRolledOut(`workload.compute.miloapis.com/web-app`, e.namespace, 2);
    const images = await imagesOf(e.namespace, 'web-app');
    expect(images.filter((i) => i.startsWith('true'))).toEqual(['true nginx:1.26', 'true nginx:1.26']);
  });

  it('one name per namespace across the groups: the younger Workload is refused with a condition', async () => {
    const s = stack();
    await s.kubectl(['apply', '-f', '-'], {
      input: `apiVersion: compute.datumapis.com/v1alpha1
kind: Workload
metadata:
  name: web-app
  namespace: project-myproject
spec:
  template:
    spec:
      image: nginx:latest
`,
    });
    const message = await s.waitForJsonPath(
      'workload web-app -n project-myproject',
      '{.status.conditions[?(@.reason=="NameConflict")].message}',
      (v) => v.length > 0,
      60_000,
    );
    expect(message).toContain('compute.miloapis.com');
    const uid = (
      await s.kubectl([
        'get',
        'workload',
        'web-app',
        '-n',
        'project-myproject',
        '-o',
        'jsonpath={.metadata.uid}',
      ])
    ).stdout;
    const owned = await s.kubectl([
      'get',
      'instances',
      '-n',
      'project-myproject',
      '-l',
      `edgeplane.dev/workload-uid=${uid}`,
      '-o',
      'name',
    ]);
    expect(owned.stdout.trim()).toBe('');
    // Deleting the refused one leaves the other untouched: same containers, still running.
    const before = (await containersOf('project-myproject', 'web-app')).sort();
    await s.kubectl(['delete', 'workload', 'web-app', '-n', 'project-myproject', '--timeout=60s']);
    await sleep(3000); // what a wrongly withdrawn intent would take to stop the containers
    expect((await containersOf('project-myproject', 'web-app')).sort()).toEqual(before);
    expect(
      (
        await s.kubectl([
          'get',
          'workload.compute.miloapis.com',
          'web-app',
          '-n',
          'project-myproject',
          '-o',
          'jsonpath={.status.readyReplicas}',
        ])
      ).stdout,
    ).toBe('2');
    await s.kubectl(
      ['delete', 'workload.compute.miloapis.com', 'web-app', '-n', 'project-myproject', '--timeout=120s'],
      { timeoutMs: 130_000 },
    );
    expect(await containersOf('project-myproject', 'web-app')).toEqual([]);
  });
});
