/**
 * `spec.placement`: every placement snippet of the Workload guide (seed 000) and of the infrastructure providers
 * doc (seed 002) parses unchanged; invalid placements are rejected; the schema stays generator-friendly.
 */
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { Placement } from '../../../shared/api/placement.js';

/** The snippets, as they appear in the docs (indentation restored). */
const seeds: Record<string, string> = {
  'guide: advanced example': `
apiVersion: compute.datumapis.com/v1alpha1
kind: Workload
metadata:
  name: backend-api
spec:
  replicas: 5
  # Placement rules - where instances should run
  placement:
    # Prefer multiple zones for HA
    topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: topology.kubernetes.io/zone
        whenUnsatisfiable: DoNotSchedule
    # Region constraints
    nodeSelector:
      topology.kubernetes.io/region: us-central1
    # Provider preferences
    affinity:
      nodeAffinity:
        preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            preference:
              matchExpressions:
                - key: provider
                  operator: In
                  values:
                    - gcp
`,
  'guide: topology spread': `
spec:
  placement:
    topologySpreadConstraints:
      # Spread across zones
      - maxSkew: 1
        topologyKey: topology.kubernetes.io/zone
        whenUnsatisfiable: DoNotSchedule
        labelSelector:
          matchLabels:
            app: web-app
      # Spread across providers
      - maxSkew: 2
        topologyKey: provider
        whenUnsatisfiable: ScheduleAnyway
`,
  'guide: node selector': `
spec:
  placement:
    nodeSelector:
      topology.kubernetes.io/region: us-central1
      topology.kubernetes.io/zone: us-central1-a
      provider: gcp
`,
  'guide: affinity and anti-affinity': `
spec:
  placement:
    affinity:
      # Prefer certain providers
      nodeAffinity:
        preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            preference:
              matchExpressions:
                - key: provider
                  operator: In
                  values:
                    - gcp
                    - aws
      # Co-locate with other workloads
      podAffinity:
        requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector:
              matchLabels:
                app: database
            topologyKey: topology.kubernetes.io/zone
      # Keep away from other workloads
      podAntiAffinity:
        preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            podAffinityTerm:
              labelSelector:
                matchLabels:
                  app: web-app
              topologyKey: kubernetes.io/hostname
`,
  'guide: web application tier': `
apiVersion: compute.datumapis.com/v1alpha1
kind: Workload
metadata:
  name: web-frontend
spec:
  replicas: 5
  placement:
    topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: topology.kubernetes.io/zone
        whenUnsatisfiable: DoNotSchedule
  template:
    spec:
      machineType: e2-medium
      image: nginx:alpine
`,
  'providers: architecture': `
apiVersion: workload.datum.net/v1alpha1
kind: Workload
metadata:
  name: my-app
  namespace: my-project
spec:
  template:
    spec:
      containers:
        - name: app
          image: gcr.io/my-project/my-app:v1.0
  placement:
    providers:
      - gcp
    regions:
      - us-central1
  replicas: 3
`,
};

describe('Placement parses every placement snippet of the docs unchanged', () => {
  for (const [name, text] of Object.entries(seeds)) {
    it(name, () => {
      const placement = parse(text).spec.placement;
      const parsed = Placement.parse(placement);
      // Nothing dropped, nothing added: Kubernetes field names throughout.
      expect(parsed).toEqual(placement);
    });
  }
});

describe('Placement accepts the rest of the Kubernetes vocabulary', () => {
  it('required node affinity with Gt/Lt, matchFields, spread policies, gang and scoring', () => {
    const p = {
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: 'cores', operator: 'Gt', values: ['4'] }] },
              { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['edge-1'] }] },
            ],
          },
        },
        podAntiAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: [
            {
              labelSelector: { matchExpressions: [{ key: 'app', operator: 'Exists' }] },
              namespaces: ['a'],
              namespaceSelector: { matchLabels: { team: 'x' } },
              topologyKey: 'kubernetes.io/hostname',
              matchLabelKeys: ['version'],
            },
          ],
        },
      },
      topologySpreadConstraints: [
        {
          maxSkew: 1,
          topologyKey: 'topology.kubernetes.io/zone',
          whenUnsatisfiable: 'DoNotSchedule',
          minDomains: 3,
          nodeAffinityPolicy: 'Ignore',
          nodeTaintsPolicy: 'Honor',
          matchLabelKeys: ['pod-template-hash'],
        },
      ],
      gang: { minCount: 4 },
      scoring: 'BinPack',
    };
    expect(Placement.parse(p)).toEqual(p);
  });

  it.each([
    [
      'maxSkew 0',
      { topologySpreadConstraints: [{ maxSkew: 0, topologyKey: 'k', whenUnsatisfiable: 'DoNotSchedule' }] },
    ],
    [
      'maxSkew 1.5',
      { topologySpreadConstraints: [{ maxSkew: 1.5, topologyKey: 'k', whenUnsatisfiable: 'DoNotSchedule' }] },
    ],
    [
      'unknown whenUnsatisfiable',
      { topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'k', whenUnsatisfiable: 'Never' }] },
    ],
    [
      'weight 101',
      {
        affinity: {
          nodeAffinity: {
            preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 101, preference: {} }],
          },
        },
      },
    ],
    [
      'weight 0',
      {
        affinity: {
          podAffinity: {
            preferredDuringSchedulingIgnoredDuringExecution: [
              { weight: 0, podAffinityTerm: { topologyKey: 'k' } },
            ],
          },
        },
      },
    ],
    [
      'operator Gte',
      {
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [{ matchExpressions: [{ key: 'a', operator: 'Gte' }] }],
            },
          },
        },
      },
    ],
    [
      'no nodeSelectorTerms',
      {
        affinity: {
          nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } },
        },
      },
    ],
    ['gang minCount 0', { gang: { minCount: 0 } }],
    ['scoring MostAllocated', { scoring: 'MostAllocated' }],
    [
      'empty topologyKey',
      {
        affinity: { podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: '' }] } },
      },
    ],
  ])('rejects %s', (_name, p) => {
    expect(Placement.safeParse(p).success).toBe(false);
  });
});

describe('Placement as a structural OpenAPI schema', () => {
  const schema = z.toJSONSchema(Placement, { io: 'input' }) as Record<string, unknown>;

  it('describes every field, for the CRD and the docs', () => {
    const missing: string[] = [];
    const walk = (s: Record<string, unknown>, path: string) => {
      if (typeof s.description !== 'string' || s.description.length < 10) missing.push(path || '<root>');
      for (const [k, v] of Object.entries((s.properties as Record<string, Record<string, unknown>>) ?? {})) {
        walk(v, `${path}.${k}`);
      }
      if (s.items && typeof s.items === 'object') {
        const items = s.items as Record<string, unknown>;
        if (items.properties) walk(items, `${path}[]`);
      }
    };
    walk(schema, '');
    expect(missing).toEqual([]);
  });

  it('has no constructs a structural schema cannot hold', () => {
    const text = JSON.stringify(schema);
    for (const bad of ['"$ref"', '"anyOf"', '"oneOf"', '"allOf"', '"not"']) expect(text).not.toContain(bad);
  });

  it('carries CEL rules for what JSON Schema cannot say', () => {
    const text = JSON.stringify(schema);
    expect(text).toContain('x-kubernetes-validations');
    expect(text).toContain('values must be empty when operator is Exists or DoesNotExist');
    expect(text).toContain('minDomains is only allowed with whenUnsatisfiable: DoNotSchedule');
  });
});
