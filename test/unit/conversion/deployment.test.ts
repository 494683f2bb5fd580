/** WorkloadDeployment conversion: lossless both ways (property tests), location and counts where Datum has them. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { downDeployment, upDeployment } from '../../../coordinator/conversion/deployment.js';
import type { KubeObjectLike } from '../../../coordinator/conversion/pair.js';

const V1 = 'compute.datumapis.com/v1alpha1';
const V1ALPHA = 'compute.datumapis.com/v1alpha';
const name = fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/);
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });

const v1Deployment: fc.Arbitrary<KubeObjectLike> = fc
  .record({
    name,
    spec: fc.record(
      {
        workloadRef: fc.record({ name, uid: name }, { requiredKeys: ['name'] }),
        location: fc.constantFrom('us-central1-a', 'eu-west-1a'),
        placementName: name,
        cityCode: fc.constantFrom('DFW', 'LHR'),
        replicas: fc.nat(5),
        template: fc.oneof(
          fc.record({ spec: fc.record({ image: fc.constant('nginx:latest') }) }),
          fc.record({
            spec: fc.record({
              containers: fc.constant([{ name: 'a', image: 'nginx:latest' }]),
              resources: fc.constant({ requests: { cpu: '2', memory: '8Gi' } }),
              networkInterfaces: fc.constant([{ network: { name: 'default' } }]),
            }),
          }),
        ),
        templateHash: name,
        revisions: fc.constant([{ templateHash: 'abc', template: { spec: { image: 'nginx:1.25' } } }]),
      },
      { requiredKeys: ['workloadRef', 'location', 'replicas', 'template'] },
    ),
    status: maybe(
      fc.record(
        {
          replicas: fc.nat(5),
          readyReplicas: fc.nat(5),
          intentRevision: fc.nat(99),
          conditions: fc.constant([]),
        },
        { requiredKeys: [] },
      ),
    ),
  })
  .map(({ name: n, spec, status }) => ({
    apiVersion: V1,
    kind: 'WorkloadDeployment',
    metadata: { name: n, namespace: 'default' },
    spec,
    ...(status ? { status } : {}),
  }));

const v1alphaDeployment: fc.Arbitrary<KubeObjectLike> = fc
  .record({
    spec: fc.record({
      workloadRef: fc.record({ name, uid: name }),
      placementName: name,
      cityCode: fc.constantFrom('DFW', 'LHR'),
      template: fc.constant({
        spec: {
          runtime: {
            resources: { instanceType: 'datumcloud/d1-standard-2' },
            sandbox: { containers: [{ name: 'a', image: 'nginx:latest' }] },
          },
          networkInterfaces: [{ network: { name: 'default' } }],
        },
      }),
      scaleSettings: fc.record(
        {
          minReplicas: fc.integer({ min: 1, max: 5 }),
          maxReplicas: fc.integer({ min: 5, max: 9 }),
          instanceManagementPolicy: fc.constant('OrderedReady'),
        },
        { requiredKeys: ['minReplicas', 'instanceManagementPolicy'] },
      ),
    }),
    status: maybe(
      fc.record(
        {
          location: fc.record(
            { name: fc.constantFrom('us-central1-a'), namespace: fc.constant('default') },
            { requiredKeys: ['name'] },
          ),
          replicas: fc.nat(5),
          currentReplicas: fc.nat(5),
          desiredReplicas: fc.nat(5),
          readyReplicas: fc.nat(5),
        },
        { requiredKeys: [] },
      ),
    ),
  })
  .map(({ spec, status }) => ({
    apiVersion: V1ALPHA,
    kind: 'WorkloadDeployment',
    metadata: { name: 'd', namespace: 'default' },
    spec,
    ...(status ? { status } : {}),
  }));

describe('WorkloadDeployment conversion', () => {
  it('v1alpha1 → v1alpha → v1alpha1 is the identity', () => {
    fc.assert(
      fc.property(v1Deployment, (o) => {
        expect(upDeployment(downDeployment(o, V1ALPHA), V1)).toEqual(o);
      }),
    );
  });

  it('v1alpha → v1alpha1 → v1alpha is the identity', () => {
    fc.assert(
      fc.property(v1alphaDeployment, (v) => {
        expect(downDeployment(upDeployment(v, V1), V1ALPHA)).toEqual(v);
      }),
    );
  });

  it('shows the location and the counts as Datum does', () => {
    const v = downDeployment(
      {
        apiVersion: V1,
        kind: 'WorkloadDeployment',
        metadata: { name: 'w-us-dfw' },
        spec: {
          workloadRef: { name: 'w' },
          location: 'us-central1-a',
          placementName: 'us',
          cityCode: 'DFW',
          replicas: 2,
          template: { spec: { image: 'nginx:latest' } },
        },
        status: { replicas: 2, readyReplicas: 1 },
      },
      V1ALPHA,
    );
    expect(v.spec).toMatchObject({ placementName: 'us', cityCode: 'DFW', scaleSettings: { minReplicas: 2 } });
    expect(v.status).toEqual({
      location: { name: 'us-central1-a' },
      replicas: 2,
      desiredReplicas: 2,
      readyReplicas: 1,
    });
  });
});
