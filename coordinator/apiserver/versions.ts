/**
 * What the aggregated API serves, as data: one API group of its own (an APIService owns a whole group-version, and
 * compute.datumapis.com/v1alpha1 holds the CRDs), and in it the Instance resource at every version of
 * {@link SERVED_VERSIONS}. A new version is one more entry (its name, the kind's schema and printer columns, and the
 * conversion from the stored object); discovery, OpenAPI, routing and the APIService manifests follow the list.
 */
import { InstanceKind, type KindDefinition } from '../../shared/api/kinds.js';

/** The API group the coordinator serves Instances in (aggregated mode). */
export const INSTANCES_GROUP = 'fleet.compute.datumapis.com';

/** One served version of the Instance resource. */
export interface ServedVersion {
  /** Version name, e.g. v1alpha1. */
  version: string;
  /** Kind, plural, short names, schemas and printer columns of the resource at this version. */
  kind: KindDefinition;
  /**
   * The object as this version shows it, from the stored object (kept at {@link STORAGE_VERSION}); it must set
   * apiVersion. Pure: never mutates its argument.
   */
  fromStored(stored: StoredObject): StoredObject;
}

/** An object as the store keeps it (JSON; spec, status and the rest of metadata ride along). */
export interface StoredObject {
  /** `<group>/<version>`. */
  apiVersion: string;
  /** Kind. */
  kind: string;
  /** Metadata (name, namespace, uid, resourceVersion, labels, …). */
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
  };
}

/** The version objects are stored at. */
export const STORAGE_VERSION = 'v1alpha1';

/** The versions served, the preferred one first. */
export const SERVED_VERSIONS: readonly ServedVersion[] = [
  {
    version: 'v1alpha1',
    kind: InstanceKind,
    fromStored: (o) => ({ ...o, apiVersion: `${INSTANCES_GROUP}/v1alpha1` }),
  },
];

/** The served version named `version`, if any. */
export function servedVersion(version: string): ServedVersion | undefined {
  return SERVED_VERSIONS.find((v) => v.version === version);
}
