/**
 * What a Workload template references in its namespace — Secrets and ConfigMaps (env valueFrom, volumes,
 * imagePullSecrets) and Networks (networkRef, networkInterfaces) — resolved into the values the agents need.
 * Pure: lookups are passed in, so the same code serves the controller (informer caches) and unit tests.
 * A missing reference is reported by name, never thrown: the controller turns it into a condition and an event.
 */
import {
  attachedNetwork,
  type InstanceTemplateSpec,
  type NetworkSpec,
  type WorkloadSpec,
} from '../../shared/api/index.js';
import type { ResolvedValues } from '../../shared/nats/messages.js';

/** Container name under which the single-image form's env values are handed over. */
export const MAIN_CONTAINER = 'main';

/** Data of a Secret or ConfigMap, every value base64-encoded (as Secret.data and ConfigMap.binaryData are). */
export type KeyValues = Record<string, string>;

/** Where references are looked up; each returns undefined when the object does not exist. */
export interface ReferenceLookup {
  /** A Secret's data (base64 values) and type. */
  secret(name: string): { data: KeyValues; type?: string } | undefined;
  /** A ConfigMap's data, base64-encoded (text data encoded, binaryData as is). */
  configMap(name: string): KeyValues | undefined;
  /** A Network's spec. */
  network(name: string): NetworkSpec | undefined;
}

/** A lookup that finds nothing: enough to learn what a spec references. */
export const NO_LOOKUP: ReferenceLookup = {
  secret: () => undefined,
  configMap: () => undefined,
  network: () => undefined,
};

/** The outcome of resolving a Workload's references. */
export interface ResolvedReferences {
  /** The values to hand to the agents. */
  values: ResolvedValues;
  /** What is missing, each as `Secret db-credentials` or `key url of Secret db-credentials`; sorted, unique. */
  missing: string[];
  /** Names of the Secrets, ConfigMaps and Networks referenced (present or not), for watches. */
  referenced: { secrets: Set<string>; configMaps: Set<string>; networks: Set<string> };
}

const decode = (b64: string): string => Buffer.from(b64, 'base64').toString('utf8');

/** Resolves every reference of a Workload spec. */
export function resolveReferences(
  spec: Pick<WorkloadSpec, 'template' | 'networkRef'>,
  lookup: ReferenceLookup,
): ResolvedReferences {
  const t: InstanceTemplateSpec = spec.template.spec;
  const values: ResolvedValues = { env: {}, files: {}, registryAuth: [] };
  const missing = new Set<string>();
  const referenced = {
    secrets: new Set<string>(),
    configMaps: new Set<string>(),
    networks: new Set<string>(),
  };

  const containers = t.containers?.length
    ? t.containers.map((c) => ({ name: c.name, env: c.env ?? [] }))
    : [{ name: MAIN_CONTAINER, env: t.env ?? [] }];
  for (const c of containers) {
    for (const e of c.env) {
      const ref = e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef;
      if (!ref) continue;
      const kind = e.valueFrom?.secretKeyRef ? 'Secret' : 'ConfigMap';
      let data: KeyValues | undefined;
      if (kind === 'Secret') {
        referenced.secrets.add(ref.name);
        data = lookup.secret(ref.name)?.data;
      } else {
        referenced.configMaps.add(ref.name);
        data = lookup.configMap(ref.name);
      }
      const value = data?.[ref.key];
      if (value === undefined) {
        if (!ref.optional)
          missing.add(data ? `key ${ref.key} of ${kind} ${ref.name}` : `${kind} ${ref.name}`);
        continue;
      }
      const env = values.env[c.name] ?? {};
      env[e.name] = decode(value);
      values.env[c.name] = env;
    }
  }

  for (const v of t.volumes ?? []) {
    const source = v.secret
      ? { kind: 'Secret', name: v.secret.secretName, items: v.secret.items, optional: v.secret.optional }
      : v.configMap
        ? {
            kind: 'ConfigMap',
            name: v.configMap.name,
            items: v.configMap.items,
            optional: v.configMap.optional,
          }
        : undefined;
    if (!source) continue;
    let data: KeyValues | undefined;
    if (source.kind === 'Secret') {
      referenced.secrets.add(source.name);
      data = lookup.secret(source.name)?.data;
    } else {
      referenced.configMaps.add(source.name);
      data = lookup.configMap(source.name);
    }
    if (!data) {
      if (!source.optional) missing.add(`${source.kind} ${source.name}`);
      values.files[v.name] = {};
      continue;
    }
    const files: Record<string, string> = {};
    if (source.items?.length) {
      for (const item of source.items) {
        const value = data[item.key];
        if (value === undefined) {
          if (!source.optional) missing.add(`key ${item.key} of ${source.kind} ${source.name}`);
          continue;
        }
        files[item.path] = value;
      }
    } else {
      for (const [key, value] of Object.entries(data)) files[key] = value;
    }
    values.files[v.name] = files;
  }

  for (const ref of t.imagePullSecrets ?? []) {
    referenced.secrets.add(ref.name);
    const secret = lookup.secret(ref.name);
    if (!secret) {
      missing.add(`Secret ${ref.name}`);
      continue;
    }
    values.registryAuth.push(...registryAuthOf(secret.data));
  }

  const networks: Array<{ name: string; subnet?: string }> = [];
  if (spec.networkRef) networks.push({ name: spec.networkRef.name });
  for (const n of t.networkInterfaces ?? [])
    networks.push({ name: attachedNetwork(n), ...(n.subnetRef ? { subnet: n.subnetRef.name } : {}) });
  for (const n of networks) {
    referenced.networks.add(n.name);
    const network = lookup.network(n.name);
    if (!network) missing.add(`Network ${n.name}`);
    else if (n.subnet && !network.subnets?.some((s) => s.name === n.subnet))
      missing.add(`subnet ${n.subnet} of Network ${n.name}`);
  }

  return { values, missing: [...missing].sort(), referenced };
}

/**
 * Registry credentials of a `kubernetes.io/dockerconfigjson` (or legacy `.dockercfg`) Secret: one entry per
 * registry, from `auth` (base64 user:password) or `username`/`password`. Anything unreadable yields nothing.
 */
export function registryAuthOf(data: KeyValues): ResolvedValues['registryAuth'] {
  const raw = data['.dockerconfigjson'] ?? data['.dockercfg'];
  if (!raw) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(decode(raw));
  } catch {
    return [];
  }
  const auths = ((parsed as { auths?: unknown }).auths ?? parsed) as Record<
    string,
    { auth?: string; username?: string; password?: string }
  >;
  const out: ResolvedValues['registryAuth'] = [];
  for (const [server, entry] of Object.entries(auths ?? {})) {
    if (!entry || typeof entry !== 'object') continue;
    let { username, password } = entry;
    if ((!username || !password) && entry.auth) {
      const text = decode(entry.auth);
      const i = text.indexOf(':');
      if (i > 0) {
        username = text.slice(0, i);
        password = text.slice(i + 1);
      }
    }
    if (username && password) out.push({ server, username, password });
  }
  return out;
}

/** True when the values carry nothing (no env, no files, no credentials). */
export function isEmptyValues(v: ResolvedValues): boolean {
  return !Object.keys(v.env).length && !Object.keys(v.files).length && !v.registryAuth.length;
}
