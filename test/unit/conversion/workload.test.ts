/**
 * Workload conversion between v1alpha1 (stored) and Datum's v1alpha: the pair is lossless (property tests over
 * generated objects of both shapes), Datum's released samples map onto what the controller runs, and a v1alpha
 * object edited after a read keeps the v1alpha1-only fields.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { KubeObjectLike } from '../../../coordinator/conversion/pair.js';
import { downWorkload, PLACEMENTS_ANNOTATION, upWorkload } from '../../../coordinator/conversion/workload.js';
import { WorkloadSpec as V1alphaSpec } from '../../../shared/api/v1alpha/workload.js';
import { WorkloadSpec as V1Spec } from '../../../shared/api/workload.js';

const V1 = 'compute.datumapis.com/v1alpha1';
const V1ALPHA = 'compute.datumapis.com/v1alpha';
const RESERVED = /^compute\.datumapis\.com\/(placements|v1alpha1?-conversion)$/;

const name = fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/);
const annotations = fc
  .dictionary(fc.stringMatching(/^[a-z]{1,5}(\.io\/[a-z]{1,4})?$/), fc.string({ maxLength: 8 }), {
    maxKeys: 3,
  })
  .filter((a) => Object.keys(a).every((k) => !RESERVED.test(k)));
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const labels = maybe(fc.dictionary(name, name, { maxKeys: 2 }));
const env = maybe(
  fc.array(
    fc.oneof(
      fc.record({ name: fc.stringMatching(/^[A-Z][A-Z_]{0,5}$/), value: fc.string({ maxLength: 5 }) }),
      fc.record({
        name: fc.stringMatching(/^[A-Z][A-Z_]{0,5}$/),
        valueFrom: fc.record({ secretKeyRef: fc.record({ name, key: name }) }),
      }),
    ),
    { maxLength: 2 },
  ),
);
const quantity = fc.constantFrom('100m', '1', '2', '4', '500m', 1);
const memory = fc.constantFrom('128Mi', '1Gi', '8Gi', '16Gi', '2Gi');
const resources = maybe(
  fc.record(
    {
      requests: fc.record({ cpu: quantity, memory }, { requiredKeys: [] }),
      limits: fc.record({ cpu: quantity, memory }, { requiredKeys: [] }),
    },
    { requiredKeys: [] },
  ),
);
const v1Port = fc.record(
  {
    name: name,
    containerPort: fc.integer({ min: 1, max: 65535 }),
    protocol: fc.constantFrom('TCP', 'UDP'),
    hostPort: fc.integer({ min: 1, max: 65535 }),
  },
  { requiredKeys: ['containerPort'] },
);
const mounts = maybe(
  fc.array(fc.record({ name, mountPath: fc.constantFrom('/a', '/b/c') }), { maxLength: 2 }),
);
const v1Container = fc.record(
  {
    name,
    image: fc.constantFrom('nginx:latest', 'docker.io/netdata/netdata:latest'),
    command: fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 }),
    env,
    ports: fc.array(v1Port, { maxLength: 2 }),
    resources,
    volumeMounts: mounts,
    readinessProbe: fc.record({ tcpSocket: fc.record({ port: fc.integer({ min: 1, max: 99 }) }) }),
  },
  { requiredKeys: ['name', 'image'] },
);
const v1Volume = fc.oneof(
  fc.record({ name, configMap: fc.record({ name }) }),
  fc.record({
    name,
    secret: fc.record({ secretName: name, defaultMode: fc.constant(256) }, { requiredKeys: ['secretName'] }),
  }),
  fc.record({ name, emptyDir: fc.constant({}) }),
);
const networkInterface = fc.oneof(
  fc.record({ network: fc.record({ name }) }),
  fc.record({ networkRef: fc.record({ name }), primary: fc.boolean() }, { requiredKeys: ['networkRef'] }),
  fc.record({
    network: fc.record({ name }),
    networkPolicy: fc.record({
      ingress: fc.array(
        fc.record(
          {
            ports: fc.array(fc.record({ port: fc.integer({ min: 1, max: 65535 }) }), { maxLength: 2 }),
            from: fc.array(fc.record({ ipBlock: fc.record({ cidr: fc.constant('0.0.0.0/0') }) }), {
              maxLength: 1,
            }),
          },
          { requiredKeys: [] },
        ),
        { maxLength: 2 },
      ),
    }),
  }),
);
const placements = fc.array(
  fc.record({
    name,
    cityCodes: fc.array(fc.constantFrom('DFW', 'DLS', 'LHR'), { minLength: 1, maxLength: 3 }),
    scaleSettings: fc.record(
      {
        minReplicas: fc.integer({ min: 1, max: 5 }),
        maxReplicas: fc.integer({ min: 5, max: 9 }),
        metrics: fc.constant([{ resource: { name: 'cpu', target: { averageUtilization: 70 } } }]),
        instanceManagementPolicy: fc.constant('OrderedReady'),
      },
      { requiredKeys: ['minReplicas', 'instanceManagementPolicy'] },
    ),
  }),
  { minLength: 1, maxLength: 3 },
);

const v1TemplateSpec = fc.oneof(
  fc.record(
    {
      image: fc.constantFrom('nginx:latest', 'projects/datumcloud/global/images/ubuntu-2204-lts'),
      machineType: fc.constantFrom('e2-small', 'n2-standard-2'),
      env,
      ports: fc.array(v1Port, { maxLength: 2 }),
      resources,
      volumes: fc.array(v1Volume, { maxLength: 2 }),
      volumeMounts: mounts,
      networkInterfaces: fc.array(networkInterface, { maxLength: 2 }),
    },
    { requiredKeys: ['image'] },
  ),
  fc.record(
    {
      containers: fc.array(v1Container, { minLength: 1, maxLength: 2 }),
      resources,
      imagePullSecrets: fc.array(fc.record({ name }), { maxLength: 1 }),
      volumes: fc.array(v1Volume, { maxLength: 2 }),
      networkInterfaces: fc.array(networkInterface, { maxLength: 2 }),
    },
    { requiredKeys: ['containers'] },
  ),
);

const condition = fc.record({
  type: fc.constantFrom('Available', 'Progressing'),
  status: fc.constantFrom('True', 'False'),
  reason: name,
});
const v1Status = maybe(
  fc.record(
    {
      phase: fc.constantFrom('Pending', 'Running'),
      replicas: fc.nat(9),
      readyReplicas: fc.nat(9),
      updatedReplicas: fc.nat(9),
      selector: fc.constant('workload=x'),
      locations: fc.array(fc.record({ location: name, replicas: fc.nat(3), readyReplicas: fc.nat(3) }), {
        maxLength: 2,
      }),
      conditions: fc.array(condition, { maxLength: 2 }),
    },
    { requiredKeys: [] },
  ),
);

/** A v1alpha1 Workload; sometimes carrying a placements annotation as one made from v1alpha would. */
const v1Workload: fc.Arbitrary<KubeObjectLike> = fc
  .record({
    name,
    annotations,
    withPlacements: maybe(placements),
    spec: fc.record(
      {
        replicas: fc.nat(5),
        selector: fc.record({ matchLabels: fc.constant({}) }),
        strategy: fc.record({ type: fc.constantFrom('Recreate', 'RollingUpdate') }),
        placement: fc.record({ regions: fc.constant(['us-central1']) }),
        template: fc.record({
          metadata: maybe(fc.record({ labels }, { requiredKeys: [] })),
          spec: v1TemplateSpec,
        }),
      },
      { requiredKeys: ['replicas', 'template'] },
    ),
    status: v1Status,
  })
  .map(({ name: n, annotations: a, withPlacements, spec, status }) => {
    const anns = {
      ...a,
      ...(withPlacements ? { [PLACEMENTS_ANNOTATION]: JSON.stringify(withPlacements) } : {}),
    };
    return {
      apiVersion: V1,
      kind: 'Workload',
      metadata: { name: n, namespace: 'default', ...(Object.keys(anns).length ? { annotations: anns } : {}) },
      spec: JSON.parse(JSON.stringify(spec)),
      ...(status ? { status } : {}),
    };
  });

const namedPort = fc.record(
  { name, port: fc.integer({ min: 1, max: 65535 }), protocol: fc.constantFrom('TCP', 'UDP', 'SCTP') },
  { requiredKeys: ['name', 'port'] },
);
const attachments = maybe(
  fc.array(
    fc.record(
      { name: fc.constantFrom('boot', 'cfg', 'sec', 'data'), mountPath: fc.constantFrom('/x', '/y') },
      { requiredKeys: ['name'] },
    ),
    { maxLength: 2 },
  ),
);
const v1alphaVolumes = fc.constant([
  {
    name: 'boot',
    disk: {
      template: {
        spec: { type: 'pd-standard', populator: { image: { name: 'datumcloud/ubuntu-2204-lts' } } },
      },
    },
  },
  { name: 'cfg', configMap: { name: 'c' } },
  { name: 'sec', secret: { secretName: 's' } },
  {
    name: 'data',
    disk: {
      deviceName: 'data',
      template: {
        spec: {
          type: 'pd-standard',
          resources: { requests: { storage: '10Gi' } },
          populator: { filesystem: { type: 'ext4' } },
        },
      },
    },
  },
]);
const runtime = fc.oneof(
  fc.record({
    resources: fc.record(
      {
        instanceType: fc.constantFrom(
          'datumcloud/d1-standard-2',
          'datumcloud/d1-standard-4',
          'datumcloud/d1-highcpu-2',
        ),
        requests: fc.record({ cpu: quantity }),
      },
      { requiredKeys: ['instanceType'] },
    ),
    sandbox: fc.record(
      {
        containers: fc.array(
          fc.record(
            {
              name,
              image: fc.constantFrom('docker.io/netdata/netdata:latest', 'nginx:latest'),
              env,
              resources: maybe(
                fc.record({ requests: fc.record({ cpu: quantity, 'nvidia.com/gpu': fc.constant('1') }) }),
              ),
              volumeAttachments: attachments,
              ports: fc.array(namedPort, { maxLength: 2 }),
            },
            { requiredKeys: ['name', 'image'] },
          ),
          { minLength: 1, maxLength: 2 },
        ),
        imagePullSecrets: fc.array(fc.record({ name }), { maxLength: 1 }),
      },
      { requiredKeys: ['containers'] },
    ),
  }),
  fc.record({
    resources: fc.record({ instanceType: fc.constant('datumcloud/d1-standard-2') }),
    virtualMachine: fc.record(
      {
        volumeAttachments: fc.constantFrom(
          [{ name: 'boot' }],
          [{ name: 'boot' }, { name: 'cfg', mountPath: '/cfg' }],
          [{ name: 'data' }],
        ),
        ports: fc.array(namedPort, { maxLength: 1 }),
      },
      { requiredKeys: ['volumeAttachments'] },
    ),
  }),
);
const v1alphaStatus = maybe(
  fc.record(
    {
      conditions: fc.array(condition, { maxLength: 1 }),
      deployments: fc.nat(4),
      replicas: fc.nat(9),
      currentReplicas: fc.nat(9),
      desiredReplicas: fc.nat(9),
      readyReplicas: fc.nat(9),
      placements: fc.array(fc.record({ name, replicas: fc.nat(3) }), { maxLength: 2 }),
    },
    { requiredKeys: [] },
  ),
);
/** A v1alpha Workload as Datum's API takes it. */
const v1alphaWorkload: fc.Arbitrary<KubeObjectLike> = fc
  .record({
    name,
    annotations,
    spec: fc.record({
      template: fc.record(
        {
          metadata: fc.record(
            {
              labels,
              annotations: maybe(fc.constant({ 'compute.datumapis.com/ssh-keys': 'u:ssh-ed25519 AAAA' })),
            },
            { requiredKeys: [] },
          ),
          spec: fc.record(
            {
              runtime,
              networkInterfaces: fc.array(
                networkInterface.filter((n) => 'network' in n),
                { minLength: 1, maxLength: 2 },
              ),
              volumes: v1alphaVolumes,
            },
            { requiredKeys: ['runtime', 'networkInterfaces'] },
          ),
        },
        { requiredKeys: ['spec'] },
      ),
      placements,
    }),
    status: v1alphaStatus,
  })
  .map(({ name: n, annotations: a, spec, status }) => ({
    apiVersion: V1ALPHA,
    kind: 'Workload',
    metadata: { name: n, namespace: 'default', ...(Object.keys(a).length ? { annotations: a } : {}) },
    spec: JSON.parse(JSON.stringify(spec)),
    ...(status ? { status } : {}),
  }));

describe('Workload conversion', () => {
  it('v1alpha1 → v1alpha → v1alpha1 is the identity', () => {
    fc.assert(
      fc.property(v1Workload, (o) => {
        const v = downWorkload(o, V1ALPHA);
        expect(v.apiVersion).toBe(V1ALPHA);
        expect(upWorkload(v, V1)).toEqual(o);
      }),
      { numRuns: 400 },
    );
  });

  it('v1alpha → v1alpha1 → v1alpha is the identity', () => {
    fc.assert(
      fc.property(v1alphaWorkload, (v) => {
        const o = upWorkload(v, V1);
        expect(o.apiVersion).toBe(V1);
        expect(downWorkload(o, V1ALPHA)).toEqual(v);
      }),
      { numRuns: 400 },
    );
  });

  it('never shows the reserved annotations of the other shape', () => {
    fc.assert(
      fc.property(v1alphaWorkload, (v) => {
        const o = upWorkload(v, V1);
        expect(Object.keys(o.metadata?.annotations ?? {})).not.toContain(
          'compute.datumapis.com/v1alpha1-conversion',
        );
        const back = downWorkload(o, V1ALPHA);
        expect(Object.keys(back.metadata?.annotations ?? {})).not.toContain(PLACEMENTS_ANNOTATION);
        expect(Object.keys(back.metadata?.annotations ?? {})).not.toContain(
          'compute.datumapis.com/v1alpha-conversion',
        );
      }),
    );
  });

  it('keeps the v1alpha1-only fields when the v1alpha view is edited', () => {
    const o: KubeObjectLike = {
      apiVersion: V1,
      kind: 'Workload',
      metadata: { name: 'w' },
      spec: {
        replicas: 2,
        strategy: { type: 'Recreate' },
        template: {
          spec: {
            containers: [{ name: 'web', image: 'nginx:latest', readinessProbe: { tcpSocket: { port: 80 } } }],
            resources: { requests: { cpu: '2', memory: '8Gi' } },
          },
        },
      },
    };
    const v = downWorkload(o, V1ALPHA) as KubeObjectLike & {
      spec: { placements: Array<{ scaleSettings: { minReplicas: number }; cityCodes: string[] }> };
    };
    v.spec.placements[0]!.cityCodes = ['DFW'];
    v.spec.placements[0]!.scaleSettings.minReplicas = 3;
    const edited = upWorkload(v, V1) as KubeObjectLike & { spec: Record<string, unknown> };
    expect(edited.spec.replicas).toBe(3);
    expect(edited.spec.strategy).toEqual({ type: 'Recreate' });
    expect((edited.spec.template as { spec: { containers: unknown[] } }).spec.containers[0]).toMatchObject({
      name: 'web',
      readinessProbe: { tcpSocket: { port: 80 } },
    });
    expect(JSON.parse(edited.metadata!.annotations![PLACEMENTS_ANNOTATION]!)).toEqual(v.spec.placements);
  });
});

describe('status in the v1alpha view', () => {
  it("is Datum's: Available with Datum's reasons, desired replicas, one entry per placement", () => {
    const placements = [
      {
        name: 'us',
        cityCodes: ['DFW', 'DLS'],
        scaleSettings: { minReplicas: 2, instanceManagementPolicy: 'OrderedReady' },
      },
    ];
    const v = downWorkload(
      {
        apiVersion: V1,
        kind: 'Workload',
        metadata: { name: 'w', annotations: { [PLACEMENTS_ANNOTATION]: JSON.stringify(placements) } },
        spec: { replicas: 4, template: { spec: { image: 'nginx:latest' } } },
        status: {
          replicas: 4,
          readyReplicas: 3,
          updatedReplicas: 4,
          locations: [{ location: 'a' }, { location: 'b' }],
          conditions: [{ type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' }],
        },
      },
      V1ALPHA,
    );
    expect(v.status).toEqual({
      conditions: [
        {
          type: 'Available',
          status: 'True',
          reason: 'AvailablePlacementFound',
          message: 'At least one available placement was found',
        },
      ],
      deployments: 2,
      replicas: 4,
      currentReplicas: 4,
      desiredReplicas: 4,
      readyReplicas: 3,
      placements: [
        {
          name: 'us',
          conditions: [
            {
              type: 'Available',
              status: 'True',
              reason: 'AvailableDeploymentFound',
              message: 'At least one available deployment was found',
            },
          ],
          replicas: 4,
          currentReplicas: 4,
          desiredReplicas: 4,
          readyReplicas: 3,
        },
      ],
    });
  });
});

describe("Datum's released samples", () => {
  const dir = path.resolve(import.meta.dirname, '../../../examples/datum');
  const workloads = (file: string) =>
    parseAllDocuments(readFileSync(path.join(dir, file), 'utf8'))
      .map((d) => d.toJSON() as KubeObjectLike)
      .filter((d) => d.kind === 'Workload');

  it.each([
    'compute_v1alpha_workload-sandbox.yaml',
    'multi-placement-sandbox.yaml',
    'compute_v1alpha_workload-vm.yaml',
  ])('%s is a valid v1alpha Workload and converts to a valid v1alpha1 one, losslessly', (file) => {
    for (const w of workloads(file)) {
      const spec = V1alphaSpec.parse(w.spec);
      const withDefaults = { ...w, spec };
      const o = upWorkload(withDefaults, V1);
      expect(() => V1Spec.parse(o.spec)).not.toThrow();
      expect(o.metadata?.annotations?.['compute.datumapis.com/v1alpha-conversion']).toBeUndefined();
      expect(downWorkload(o, V1ALPHA)).toEqual(withDefaults);
    }
  });

  it('maps the sandbox sample onto containers, the instance type onto requests, placements onto replicas', () => {
    const [w] = workloads('compute_v1alpha_workload-sandbox.yaml');
    const o = upWorkload({ ...w!, spec: V1alphaSpec.parse(w!.spec) }, V1) as KubeObjectLike & {
      spec: Record<string, unknown>;
    };
    expect(o.spec).toMatchObject({
      replicas: 1,
      template: {
        metadata: { labels: { tier: 'app' } },
        spec: {
          resources: { requests: { cpu: '2', memory: '8Gi' } },
          containers: [
            {
              name: 'netdata',
              image: 'docker.io/netdata/netdata:latest',
              volumeMounts: [
                { name: 'secret', mountPath: '/secret' },
                { name: 'configmap', mountPath: '/configmap' },
              ],
            },
          ],
          networkInterfaces: [{ network: { name: 'default' } }],
          volumes: [
            { name: 'secret', secret: { secretName: 'workload-sandbox-sample-secret' } },
            { name: 'configmap', configMap: { name: 'workload-sandbox-sample-configmap' } },
          ],
        },
      },
    });
    const [m] = workloads('multi-placement-sandbox.yaml');
    const mo = upWorkload({ ...m!, spec: V1alphaSpec.parse(m!.spec) }, V1) as KubeObjectLike & {
      spec: { replicas: number };
    };
    expect(mo.spec.replicas).toBe(2);
  });

  it('maps the VM sample onto a VM image of the catalog', () => {
    const [w] = workloads('compute_v1alpha_workload-vm.yaml');
    const o = upWorkload({ ...w!, spec: V1alphaSpec.parse(w!.spec) }, V1) as KubeObjectLike & {
      spec: { template: { spec: Record<string, unknown> } };
    };
    expect(o.spec.template.spec.image).toBe('projects/datumcloud/global/images/ubuntu-2204-lts');
    expect(o.spec.template.spec.volumeMounts).toEqual([
      { name: 'secret', mountPath: '/secret' },
      { name: 'configmap', mountPath: '/configmap' },
    ]);
  });
});
