/**
 * What the aggregated server tells kube-apiserver about itself: discovery (the APIGroupList, APIGroup and
 * APIResourceList of the legacy discovery endpoints, which the aggregator falls back to) and the OpenAPI v2 and
 * v3 documents that `kubectl explain` reads through kube-apiserver. All of it from {@link SERVED_VERSIONS}.
 */
import crypto from 'node:crypto';
import { type JSONSchema, toStructuralSchema } from '../../shared/gen/openapi.js';
import { INSTANCES_GROUP, SERVED_VERSIONS, type ServedVersion } from './versions.js';

/** Verbs served: reads only (the coordinator is the only writer, through its store). */
export const VERBS = ['get', 'list', 'watch'];

/** The APIGroup of {@link INSTANCES_GROUP}. */
export function apiGroup(): object {
  const versions = SERVED_VERSIONS.map((v) => ({
    groupVersion: `${INSTANCES_GROUP}/${v.version}`,
    version: v.version,
  }));
  return {
    kind: 'APIGroup',
    apiVersion: 'v1',
    name: INSTANCES_GROUP,
    versions,
    preferredVersion: versions[0],
  };
}

/** `/apis`: the one group served. */
export function apiGroupList(): object {
  const { kind: _k, apiVersion: _a, ...group } = apiGroup() as Record<string, unknown>;
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: [group] };
}

/** `/apis/<group>/<version>`. */
export function apiResourceList(v: ServedVersion): object {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: `${INSTANCES_GROUP}/${v.version}`,
    resources: [
      {
        name: v.kind.plural,
        singularName: v.kind.singular,
        namespaced: v.kind.scope === 'Namespaced',
        kind: v.kind.kind,
        verbs: VERBS,
        ...(v.kind.shortNames.length ? { shortNames: v.kind.shortNames } : {}),
        categories: ['edgeplane'],
      },
    ],
  };
}

const META = 'io.k8s.apimachinery.pkg.apis.meta.v1';

/** The part of ObjectMeta these objects use, for explain (`kubectl explain instances.metadata`). */
const objectMeta: JSONSchema = {
  type: 'object',
  description: 'Standard object metadata.',
  properties: {
    name: { type: 'string', description: 'Name, unique within the namespace.' },
    namespace: { type: 'string', description: 'Namespace of the object.' },
    uid: { type: 'string', description: 'Unique identifier, set by the server.' },
    resourceVersion: {
      type: 'string',
      description: 'Version of the object (the sequence of its last change in the instances bucket).',
    },
    generation: { type: 'integer', format: 'int64', description: 'Generation of the desired state.' },
    creationTimestamp: { type: 'string', format: 'date-time', description: 'When it was created.' },
    labels: { type: 'object', additionalProperties: { type: 'string' }, description: 'Labels.' },
    annotations: { type: 'object', additionalProperties: { type: 'string' }, description: 'Annotations.' },
    ownerReferences: {
      type: 'array',
      description: 'The WorkloadDeployment it belongs to.',
      items: {
        type: 'object',
        properties: {
          apiVersion: { type: 'string' },
          kind: { type: 'string' },
          name: { type: 'string' },
          uid: { type: 'string' },
          controller: { type: 'boolean' },
          blockOwnerDeletion: { type: 'boolean' },
        },
      },
    },
  },
};

/** Definition name of a kind at a version, e.g. com.datumapis.compute.fleet.v1alpha1.Instance. */
export function definitionName(v: ServedVersion, suffix = ''): string {
  return `${INSTANCES_GROUP.split('.').reverse().join('.')}.${v.version}.${v.kind.kind}${suffix}`;
}

function schemas(v: ServedVersion, ref: (name: string) => string): Record<string, JSONSchema> {
  const gvk = (kind: string) => [{ group: INSTANCES_GROUP, version: v.version, kind }];
  return {
    [definitionName(v)]: {
      type: 'object',
      description: v.kind.description,
      properties: {
        apiVersion: { type: 'string', description: 'APIVersion of this object.' },
        kind: { type: 'string', description: 'Kind of this object.' },
        metadata: { $ref: ref(`${META}.ObjectMeta`), description: 'Standard object metadata.' },
        spec: toStructuralSchema(v.kind.spec),
        status: toStructuralSchema(v.kind.status),
      },
      'x-kubernetes-group-version-kind': gvk(v.kind.kind),
    },
    [definitionName(v, 'List')]: {
      type: 'object',
      description: `A list of ${v.kind.kind} objects.`,
      required: ['items'],
      properties: {
        apiVersion: { type: 'string' },
        kind: { type: 'string' },
        metadata: { type: 'object', properties: { resourceVersion: { type: 'string' } } },
        items: { type: 'array', items: { $ref: ref(definitionName(v)) } },
      },
      'x-kubernetes-group-version-kind': gvk(`${v.kind.kind}List`),
    },
    [`${META}.ObjectMeta`]: objectMeta,
  };
}

/** Read paths of one version, for the OpenAPI documents (`schema` makes a response schema from a ref). */
function paths(v: ServedVersion, schema: (ref: string) => JSONSchema): Record<string, unknown> {
  const base = `/apis/${INSTANCES_GROUP}/${v.version}`;
  const op = (id: string, def: string, action: string) => ({
    get: {
      operationId: id,
      'x-kubernetes-action': action,
      'x-kubernetes-group-version-kind': { group: INSTANCES_GROUP, version: v.version, kind: v.kind.kind },
      responses: { '200': { description: 'OK', ...schema(def) } },
    },
  });
  const k = v.kind.kind;
  return {
    [`${base}/${v.kind.plural}`]: op(`list${k}ForAllNamespaces`, definitionName(v, 'List'), 'list'),
    [`${base}/namespaces/{namespace}/${v.kind.plural}`]: op(
      `listNamespaced${k}`,
      definitionName(v, 'List'),
      'list',
    ),
    [`${base}/namespaces/{namespace}/${v.kind.plural}/{name}`]: op(
      `readNamespaced${k}`,
      definitionName(v),
      'get',
    ),
  };
}

/** The OpenAPI v2 document of every served version. */
export function openApiV2(): object {
  const definitions: Record<string, JSONSchema> = {};
  let allPaths: Record<string, unknown> = {};
  for (const v of SERVED_VERSIONS) {
    Object.assign(
      definitions,
      schemas(v, (n) => `#/definitions/${n}`),
    );
    allPaths = { ...allPaths, ...paths(v, (d) => ({ schema: { $ref: `#/definitions/${d}` } })) };
  }
  return {
    swagger: '2.0',
    info: { title: 'Edgeplane instances', version: SERVED_VERSIONS[0]!.version },
    paths: allPaths,
    definitions,
  };
}

/** The OpenAPI v3 document of one version (`/openapi/v3/apis/<group>/<version>`). */
export function openApiV3(v: ServedVersion): object {
  return {
    openapi: '3.0.0',
    info: { title: 'Edgeplane instances', version: v.version },
    paths: paths(v, (d) => ({
      content: { 'application/json': { schema: { $ref: `#/components/schemas/${d}` } } },
    })),
    components: { schemas: schemas(v, (n) => `#/components/schemas/${n}`) },
  };
}

/** `/openapi/v3`: where each version's document is, with a hash that changes with it. */
export function openApiV3Index(): object {
  const out: Record<string, { serverRelativeURL: string }> = {};
  for (const v of SERVED_VERSIONS) {
    const hash = crypto
      .createHash('sha512')
      .update(JSON.stringify(openApiV3(v)))
      .digest('hex')
      .slice(0, 64);
    const p = `apis/${INSTANCES_GROUP}/${v.version}`;
    out[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash.toUpperCase()}` };
  }
  return { paths: out };
}
