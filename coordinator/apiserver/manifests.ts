/**
 * The Kubernetes objects that route `instances` to the coordinator: one APIService per served version, and the
 * Service it names. Data-driven from SERVED_VERSIONS, used by the dev stack and tests (deploy/stack/instances-api.ts)
 * and checked against deploy/kubernetes/instances-api/ by a unit test.
 */
import { INSTANCES_GROUP, SERVED_VERSIONS } from './versions.js';

/** Where kube-apiserver finds the coordinator. */
export interface ApiServiceTarget {
  /** Namespace and name of the Service. */
  namespace: string;
  service: string;
  /** Port the APIService calls (the Service's port; with an ExternalName Service, the coordinator's). */
  port: number;
  /** PEM of the CA that signed the serving certificate; absent: insecureSkipTLSVerify (as metrics-server ships). */
  caPem?: string;
}

/**
 * Group priority: above the CRD groups' 1000, so that when the Instance CRD is still installed `kubectl get
 * instances` (and `inst`) resolve to this group.
 */
export const GROUP_PRIORITY_MINIMUM = 2000;

/** The APIServices, one per served version (the first one preferred). */
export function apiServices(t: ApiServiceTarget): object[] {
  return SERVED_VERSIONS.map((v, i) => ({
    apiVersion: 'apiregistration.k8s.io/v1',
    kind: 'APIService',
    metadata: {
      name: `${v.version}.${INSTANCES_GROUP}`,
      labels: { 'app.kubernetes.io/part-of': 'edgeplane' },
    },
    spec: {
      group: INSTANCES_GROUP,
      version: v.version,
      groupPriorityMinimum: GROUP_PRIORITY_MINIMUM,
      versionPriority: 100 - i,
      service: { namespace: t.namespace, name: t.service, port: t.port },
      ...(t.caPem ? { caBundle: Buffer.from(t.caPem).toString('base64') } : { insecureSkipTLSVerify: true }),
    },
  }));
}

/** The DNS name kube-apiserver checks the serving certificate against: `<service>.<namespace>.svc`. */
export function servingName(t: Pick<ApiServiceTarget, 'namespace' | 'service'>): string {
  return `${t.service}.${t.namespace}.svc`;
}
