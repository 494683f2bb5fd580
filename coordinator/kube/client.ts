/** Typed access to the Kubernetes API: Edgeplane's custom objects, Secrets/ConfigMaps, Events and Leases. */
import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { KindDefinition } from '../../shared/api/kinds.js';
import { VERSION } from '../../shared/api/kinds.js';

/** The metadata every object has, as far as the coordinator reads it. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: Array<{
    apiVersion: string;
    kind: string;
    name: string;
    uid: string;
    controller?: boolean;
    blockOwnerDeletion?: boolean;
  }>;
}

/** A custom object of one of Edgeplane's kinds. */
export interface KubeObject<Spec = unknown, Status = unknown> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
}

/** Which resource a call addresses: a kind in one of its groups. */
export interface ResourceRef {
  kind: KindDefinition;
  group: string;
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** True for a 404 from the API server. */
export function isNotFound(err: unknown): boolean {
  return err instanceof ApiException && err.code === 404;
}

/** True for a 409 (already exists, or a resourceVersion conflict). */
export function isConflict(err: unknown): boolean {
  return err instanceof ApiException && err.code === 409;
}

/**
 * A short text for an API error, with the server's message rather than the whole response. A 403 says so first:
 * the server's message then names the identity, verb, resource, API group and namespace that RBAC refused, e.g.
 * `403 Forbidden: … User "system:serviceaccount:edgeplane-system:edge-coordinator" cannot patch resource
 * "workloads/status" in API group "compute.datumapis.com" in the namespace "shop"`.
 */
export function apiErrorMessage(err: unknown): string {
  if (err instanceof ApiException) {
    let text: string;
    try {
      const body = typeof err.body === 'string' ? JSON.parse(err.body) : err.body;
      text = body?.message ?? err.message;
    } catch {
      text = String(err.body).slice(0, 300);
    }
    return `${err.code}${err.code === 403 ? ' Forbidden' : ''}: ${text}`;
  }
  // A failed watch carries only the HTTP status (client-node's Watch), e.g. Error('Forbidden') with statusCode.
  const status = (err as { statusCode?: number })?.statusCode;
  if (status) return `${status}: ${(err as Error).message}`;
  return (err as Error)?.message ?? String(err);
}

export class KubeClient {
  readonly kc: KubeConfig;
  readonly custom: CustomObjectsApi;
  readonly core: CoreV1Api;
  readonly coordination: CoordinationV1Api;

  constructor(kubeconfigPath?: string) {
    this.kc = new KubeConfig();
    if (kubeconfigPath) this.kc.loadFromFile(kubeconfigPath);
    else this.kc.loadFromDefault();
    reuseConnections(this.kc);
    this.custom = this.kc.makeApiClient(CustomObjectsApi);
    this.core = this.kc.makeApiClient(CoreV1Api);
    this.coordination = this.kc.makeApiClient(CoordinationV1Api);
  }

  /** URL path of a resource collection across namespaces, for watches. */
  static path(ref: ResourceRef): string {
    return `/apis/${ref.group}/${VERSION}/${ref.kind.plural}`;
  }

  async list<T extends KubeObject>(
    ref: ResourceRef,
  ): Promise<{ items: T[]; metadata: { resourceVersion: string } }> {
    return this.custom.listClusterCustomObject({
      group: ref.group,
      version: VERSION,
      plural: ref.kind.plural,
    });
  }

  async create<T extends KubeObject>(ref: ResourceRef, obj: T): Promise<T> {
    const p = { group: ref.group, version: VERSION, plural: ref.kind.plural, body: obj };
    if (ref.kind.scope === 'Cluster') return this.custom.createClusterCustomObject(p);
    return this.custom.createNamespacedCustomObject({ ...p, namespace: obj.metadata.namespace! });
  }

  async patch<T extends KubeObject>(
    ref: ResourceRef,
    namespace: string | undefined,
    name: string,
    body: object,
  ): Promise<T> {
    const p = { group: ref.group, version: VERSION, plural: ref.kind.plural, name, body };
    if (ref.kind.scope === 'Cluster') return this.custom.patchClusterCustomObject(p, mergePatch);
    return this.custom.patchNamespacedCustomObject({ ...p, namespace: namespace! }, mergePatch);
  }

  async patchStatus<T extends KubeObject>(
    ref: ResourceRef,
    namespace: string | undefined,
    name: string,
    status: unknown,
  ): Promise<T> {
    const p = { group: ref.group, version: VERSION, plural: ref.kind.plural, name, body: { status } };
    if (ref.kind.scope === 'Cluster') return this.custom.patchClusterCustomObjectStatus(p, mergePatch);
    return this.custom.patchNamespacedCustomObjectStatus({ ...p, namespace: namespace! }, mergePatch);
  }

  /** Deletes an object; a missing one is not an error. */
  async delete(ref: ResourceRef, namespace: string | undefined, name: string): Promise<void> {
    const p = { group: ref.group, version: VERSION, plural: ref.kind.plural, name };
    try {
      if (ref.kind.scope === 'Cluster') await this.custom.deleteClusterCustomObject(p);
      else await this.custom.deleteNamespacedCustomObject({ ...p, namespace: namespace! });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

/**
 * client-node makes a new https.Agent for every request, so every API call pays a TCP and TLS handshake.
 * One keep-alive agent per cluster (what client-go and kubectl do) reuses connections. The agent's options
 * come from the kubeconfig, which does not change while the process runs.
 */
function reuseConnections(kc: KubeConfig): void {
  type CreateAgent = (cluster: { server?: string; proxyUrl?: string } | null, options: object) => unknown;
  const target = kc as unknown as { createAgent: CreateAgent };
  const create = target.createAgent.bind(kc);
  const agents = new Map<string, unknown>();
  target.createAgent = (cluster, options) => {
    const key = `${cluster?.server ?? ''}|${cluster?.proxyUrl ?? ''}`;
    let agent = agents.get(key);
    if (!agent) {
      agent = create(cluster, { ...options, keepAlive: true });
      agents.set(key, agent);
    }
    return agent;
  };
}
