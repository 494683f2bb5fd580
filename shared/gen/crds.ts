/** Builds the CustomResourceDefinitions of every Edgeplane kind from the zod schemas. */
import { GROUP, KINDS, type KindDefinition, VERSION } from '../api/kinds.js';
import { type JSONSchema, toStructuralSchema } from './openapi.js';

/** A CustomResourceDefinition object, ready to serialise as YAML. */
export type CustomResourceDefinition = { [key: string]: unknown };

/** The CRD of one kind in one group. */
export function crdFor(kind: KindDefinition, group: string): CustomResourceDefinition {
  const schemaOf = (spec: KindDefinition['spec'], status: KindDefinition['status']): JSONSchema => ({
    type: 'object',
    description: kind.description,
    properties: {
      apiVersion: { type: 'string', description: 'APIVersion of this object.' },
      kind: { type: 'string', description: 'Kind of this object.' },
      metadata: { type: 'object' },
      spec: toStructuralSchema(spec),
      status: toStructuralSchema(status),
    },
    ...(kind.specOptional ? {} : { required: ['spec'] }),
  });
  const subresources: JSONSchema = { status: {} };
  if (kind.scale) subresources.scale = { ...kind.scale };
  const extra = group === GROUP ? (kind.extraVersions ?? []) : [];
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${kind.plural}.${group}`,
      labels: { 'app.kubernetes.io/part-of': 'edgeplane' },
    },
    spec: {
      group,
      scope: kind.scope,
      names: {
        kind: kind.kind,
        listKind: `${kind.kind}List`,
        plural: kind.plural,
        singular: kind.singular,
        ...(kind.shortNames.length ? { shortNames: kind.shortNames } : {}),
        categories: ['edgeplane'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: schemaOf(kind.spec, kind.status) },
          subresources,
          additionalPrinterColumns: kind.printerColumns,
        },
        // Datum's v1alpha has no scale subresource (its replica counts are per placement). No conversion block:
        // a coordinator with --webhook-address writes it (coordinator/conversion/server.ts), and re-applying these
        // files (kubectl apply) leaves a field they do not name alone.
        ...extra.map((v) => ({
          name: v.name,
          served: true,
          storage: false,
          schema: { openAPIV3Schema: schemaOf(v.spec, v.status) },
          subresources: { status: {} },
          additionalPrinterColumns: v.printerColumns,
        })),
      ],
    },
  };
}

/** Every CRD, keyed by the file name it is written to under deploy/crds/. */
export function allCrds(): Map<string, CustomResourceDefinition> {
  const out = new Map<string, CustomResourceDefinition>();
  for (const kind of KINDS) {
    for (const group of kind.groups) out.set(`${group}_${kind.plural}.yaml`, crdFor(kind, group));
  }
  return out;
}
