/**
 * Pure helpers that turn an instance template into what a driver runs: the containers of either template form,
 * their environment with `valueFrom` resolved from the delivered values, per-container limits, and the checks
 * that reject what a runtime cannot honour with an error naming the field.
 */
import type { ResourceAmounts } from '../../shared/api/index.js';
import type { Container, InstanceTemplateSpec, Volume } from '../../shared/api/template.js';
import type { ResolvedValues } from '../../shared/nats/messages.js';
import { parseCpuMillis, parseMemoryBytes } from '../../shared/resources.js';

/** A template that a driver refuses; the message names the field and why. */
export class TemplateError extends Error {
  override name = 'TemplateError';
}

/** Smallest memory limit Docker accepts for a container (6 MiB). */
export const MIN_CONTAINER_MEMORY_BYTES = 6 * 1024 * 1024;

/** The container name of the single-image form (`image` at the top of the template). */
export const MAIN_CONTAINER = 'main';

/** The containers of one instance, normalised from either template form. */
export function containersOf(t: InstanceTemplateSpec): Container[] {
  if (t.containers?.length) return t.containers;
  if (!t.image) throw new TemplateError('template.spec: needs image or containers');
  return [
    {
      name: MAIN_CONTAINER,
      image: t.image,
      command: t.command,
      args: t.args,
      env: t.env,
      ports: t.ports,
      resources: t.resources,
      volumeMounts: t.volumeMounts,
      readinessProbe: t.readinessProbe,
      livenessProbe: t.livenessProbe,
    },
  ];
}

/** Field path of a container, for error messages: `containers[1]` or the single-image form's `spec`. */
export function containerPath(t: InstanceTemplateSpec, index: number): string {
  return t.containers?.length ? `template.spec.containers[${index}]` : 'template.spec';
}

/**
 * `NAME=value` entries of a container: literal values, and `valueFrom` values from `values.env[container][NAME]`.
 * A missing value of an optional reference leaves the variable unset; any other missing value is an error
 * naming the variable and the Secret/ConfigMap key it needs.
 */
export function resolveEnv(c: Container, path: string, values: ResolvedValues | undefined): string[] {
  const out: string[] = [];
  for (const [i, e] of (c.env ?? []).entries()) {
    if (e.value !== undefined || !e.valueFrom) {
      out.push(`${e.name}=${e.value ?? ''}`);
      continue;
    }
    const ref = e.valueFrom.secretKeyRef ?? e.valueFrom.configMapKeyRef;
    const kind = e.valueFrom.secretKeyRef ? 'Secret' : 'ConfigMap';
    const delivered = values?.env[c.name]?.[e.name];
    if (delivered !== undefined) {
      out.push(`${e.name}=${delivered}`);
      continue;
    }
    if (ref?.optional) continue;
    throw new TemplateError(
      `${path}.env[${i}] (${e.name}): the value of ${kind} ${ref?.name ?? '?'} key ${ref?.key ?? '?'} was not delivered to this host`,
    );
  }
  return out;
}

/** The volume a mount names, or an error naming the mount. */
export function volumeFor(t: InstanceTemplateSpec, mount: { name: string }, path: string): Volume {
  const v = t.volumes?.find((x) => x.name === mount.name);
  if (!v)
    throw new TemplateError(`${path}.volumeMounts: volume "${mount.name}" is not in template.spec.volumes`);
  return v;
}

/**
 * CPU and memory limits of each container: a container's own `resources.limits` (or requests) when it sets them,
 * otherwise an equal share of what the instance's limits leave over. Rejects limits the runtime cannot enforce.
 */
export function containerLimits(t: InstanceTemplateSpec, instance: ResourceAmounts): ResourceAmounts[] {
  const specs = containersOf(t);
  if (!(instance.cpuMillis > 0))
    throw new TemplateError(`limits.cpu: ${instance.cpuMillis}m is not a positive CPU amount`);
  if (!(instance.memoryBytes > 0)) {
    throw new TemplateError(`limits.memory: ${instance.memoryBytes} bytes is not a positive memory amount`);
  }
  const own = specs.map((c, i) => {
    if (!t.containers?.length) return {};
    const r = c.resources;
    const path = `${containerPath(t, i)}.resources`;
    try {
      const cpu = r?.limits?.cpu ?? r?.requests?.cpu;
      const mem = r?.limits?.memory ?? r?.requests?.memory;
      return {
        ...(cpu !== undefined ? { cpuMillis: parseCpuMillis(cpu) } : {}),
        ...(mem !== undefined ? { memoryBytes: parseMemoryBytes(mem) } : {}),
      };
    } catch (err) {
      throw new TemplateError(`${path}: ${(err as Error).message}`);
    }
  });
  const share = (key: keyof ResourceAmounts) => {
    const fixed = own.reduce((sum, o) => sum + (o[key] ?? 0), 0);
    const open = own.filter((o) => o[key] === undefined).length;
    return open ? Math.max(0, instance[key] - fixed) / open : 0;
  };
  const cpuShare = share('cpuMillis');
  const memShare = share('memoryBytes');
  return own.map((o, i) => {
    const limits = { cpuMillis: o.cpuMillis ?? cpuShare, memoryBytes: o.memoryBytes ?? memShare };
    if (limits.memoryBytes < MIN_CONTAINER_MEMORY_BYTES) {
      throw new TemplateError(
        `${containerPath(t, i)}.resources.limits.memory: ${Math.round(limits.memoryBytes)} bytes is below the 6Mi a container needs`,
      );
    }
    if (!(limits.cpuMillis >= 1)) {
      throw new TemplateError(`${containerPath(t, i)}.resources.limits.cpu: needs at least 1m of CPU`);
    }
    return limits;
  });
}

/** `registry.example.com` of `registry.example.com/app:v1`; `docker.io` for Docker Hub short names. */
export function registryOf(image: string): string {
  const first = image.split('/')[0] ?? '';
  if (!image.includes('/') || !(first.includes('.') || first.includes(':') || first === 'localhost'))
    return 'docker.io';
  return first;
}
