/**
 * What can be read from an intent that failed validation, so the instances it names still get a clear error in
 * their status instead of silently never starting.
 */

/** An intent that did not validate: who it was for, and why it was refused. */
export interface RejectedIntent {
  /** KV key of the intent. */
  key: string;
  /** Namespace, when readable. */
  namespace: string;
  /** Workload, when readable. */
  workload: string;
  /** Instances with their hosts, when readable. */
  instances: Array<{ name: string; host: string }>;
  /** The validation error. */
  message: string;
}

/** Salvages namespace, workload and instances from a malformed intent; undefined when not even those parse. */
export function salvageIntent(key: string, value: Uint8Array, error: string): RejectedIntent | undefined {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(value));
  } catch {
    json = undefined;
  }
  const o = (json && typeof json === 'object' ? json : {}) as Record<string, unknown>;
  // `<location>.<namespace>.<workload>` names them even when the body does not.
  const [, keyNamespace, keyWorkload] = key.split('.');
  const namespace = typeof o.namespace === 'string' ? o.namespace : keyNamespace;
  const workload = typeof o.workload === 'string' ? o.workload : keyWorkload;
  const instances = Array.isArray(o.instances)
    ? o.instances.flatMap((i) => {
        const r = (i && typeof i === 'object' ? i : {}) as Record<string, unknown>;
        return typeof r.name === 'string' && typeof r.host === 'string'
          ? [{ name: r.name, host: r.host }]
          : [];
      })
    : [];
  if (!namespace || !workload || !instances.length) return undefined;
  return { key, namespace, workload, instances, message: error };
}
