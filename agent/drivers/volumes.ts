/**
 * Host side of an instance's volumes for the container driver, after the kubelet's volume manager:
 * - `emptyDir` is a directory under the instance's state directory (or, with `medium: Memory`, a tmpfs Docker
 *   volume), shared by the instance's containers and removed with the instance;
 * - `configMap` and `secret` are files written from the values the coordinator delivered, mounted read-only;
 * - `persistentVolumeClaim` is a named Docker volume per namespace and claim that outlives every instance on
 *   this host, so a replacement instance finds its data.
 */
import { mkdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize, resolve } from 'node:path';
import type Docker from 'dockerode';
import type { InstanceTemplateSpec, Volume, VolumeMount } from '../../shared/api/template.js';
import type { ResolvedValues } from '../../shared/nats/messages.js';
import { safeName } from '../../shared/os.js';
import { parseMemoryBytes } from '../../shared/resources.js';
import { TemplateError, volumeFor } from './template.js';

/** Docker volume labels the driver sets and reads. */
export const VOLUME_LABELS = {
  host: 'edgeplane.dev/host',
  namespace: 'edgeplane.dev/namespace',
  instance: 'edgeplane.dev/instance',
  claim: 'edgeplane.dev/claim',
} as const;

/** Where one volume lives on the host. */
export type VolumeSource =
  | {
      /** A host directory. */ type: 'bind' /** Its path. */;
      path: string /** Files only: always read-only. */;
      readOnly: boolean;
    }
  | {
      /** A Docker volume. */ type: 'volume' /** Its name. */;
      name: string /** Claim asks read-only. */;
      readOnly: boolean /** tmpfs-backed: no subPath. */;
      memory: boolean;
    };

/** Identity of the instance whose volumes are prepared. */
export interface VolumeOwner {
  /** This host. */
  host: string;
  /** Namespace of the Workload. */
  namespace: string;
  /** Instance name. */
  name: string;
}

/** Name of the Docker volume of a claim on this host. */
export function claimVolumeName(namespace: string, claim: string): string {
  return safeName(`edge-pvc_${namespace}_${claim}`);
}

/** A relative path that stays inside its directory, or an error naming `field`. */
function relativeInside(p: string, field: string): string {
  const n = normalize(p);
  if (p.startsWith('/') || n === '..' || n.startsWith('../') || n.includes('/../')) {
    throw new TemplateError(`${field}: "${p}" must be a relative path inside the volume`);
  }
  return n;
}

const TMPFS_MAGIC = 0x01021994;

/** Whether `path` (or its nearest existing parent) is on a tmpfs. */
function onTmpfs(path: string): boolean {
  for (let p = path; ; p = dirname(p)) {
    try {
      return statfsSync(p).type === TMPFS_MAGIC;
    } catch {
      if (p === dirname(p)) return false;
    }
  }
}

/**
 * Where secret files may live: a directory on a tmpfs (like the kubelet's secret volumes), so secret values
 * never reach a disk. `/run` on systemd hosts, `/dev/shm` otherwise; undefined when neither is a tmpfs.
 */
export function defaultSecretRoot(host: string): string | undefined {
  return ['/run/edgeplane', '/dev/shm/edgeplane'].map((d) => join(d, safeName(host))).find((d) => onTmpfs(d));
}

/**
 * Manages the host side of volumes for instances whose state lives under `root/<namespace>_<name>`; secret
 * files live under `secretRoot/<namespace>_<name>`, on a tmpfs.
 */
export class InstanceVolumes {
  constructor(
    private readonly docker: Docker,
    private readonly root: string,
    private readonly secretRoot: string | undefined,
  ) {}

  /** The instance's directory of secret files (on a tmpfs). */
  secretDirOf(namespace: string, name: string): string | undefined {
    return this.secretRoot ? join(this.secretRoot, safeName(`${namespace}_${name}`)) : undefined;
  }

  /** The instance's own directory (emptyDirs, configMap/secret files). */
  dirOf(namespace: string, name: string): string {
    return join(this.root, safeName(`${namespace}_${name}`));
  }

  private memoryVolumeName(owner: VolumeOwner, volume: string): string {
    return safeName(`edge_${owner.host}_${owner.namespace}_${owner.name}_${volume}`);
  }

  /**
   * Creates every volume of the template (directories, files, Docker volumes) and returns where each lives.
   * Throws a {@link TemplateError} naming the volume when its content was not delivered.
   */
  async prepare(
    owner: VolumeOwner,
    t: InstanceTemplateSpec,
    values: ResolvedValues | undefined,
  ): Promise<Map<string, VolumeSource>> {
    const dir = this.dirOf(owner.namespace, owner.name);
    const out = new Map<string, VolumeSource>();
    for (const [i, v] of (t.volumes ?? []).entries()) {
      const field = `template.spec.volumes[${i}] (${v.name})`;
      out.set(v.name, await this.prepareOne(owner, dir, v, field, values));
    }
    return out;
  }

  private async prepareOne(
    owner: VolumeOwner,
    dir: string,
    v: Volume,
    field: string,
    values: ResolvedValues | undefined,
  ): Promise<VolumeSource> {
    if (v.emptyDir?.medium === 'Memory') {
      const name = this.memoryVolumeName(owner, v.name);
      const size = v.emptyDir.sizeLimit !== undefined ? parseMemoryBytes(v.emptyDir.sizeLimit) : undefined;
      await this.ensureVolume(name, {
        labels: {
          [VOLUME_LABELS.host]: owner.host,
          [VOLUME_LABELS.namespace]: owner.namespace,
          [VOLUME_LABELS.instance]: owner.name,
        },
        driverOpts: { type: 'tmpfs', device: 'tmpfs', o: size ? `size=${size}` : 'size=64m' },
      });
      return { type: 'volume', name, readOnly: false, memory: true };
    }
    if (v.emptyDir) {
      if (v.emptyDir.sizeLimit !== undefined) {
        // A plain directory has no quota to enforce it with; saying so beats silently ignoring the limit.
        throw new TemplateError(
          `${field}: emptyDir.sizeLimit needs medium: Memory on this host (a disk-backed emptyDir cannot be limited)`,
        );
      }
      const path = join(dir, 'empty-dir', v.name);
      mkdirSync(path, { recursive: true, mode: 0o777 });
      return { type: 'bind', path, readOnly: false };
    }
    if (v.configMap || v.secret) {
      const kind = v.configMap ? 'ConfigMap' : 'Secret';
      const source = v.configMap?.name ?? v.secret?.secretName ?? '';
      const optional = v.configMap?.optional ?? v.secret?.optional ?? false;
      const mode = v.configMap?.defaultMode ?? v.secret?.defaultMode ?? 0o644;
      const files = values?.files[v.name];
      if (!files && !optional) {
        throw new TemplateError(`${field}: the files of ${kind} ${source} were not delivered to this host`);
      }
      let path = join(dir, 'files', v.name);
      if (v.secret) {
        const secretDir = this.secretDirOf(owner.namespace, owner.name);
        if (!secretDir) {
          throw new TemplateError(`${field}: this host has no tmpfs for secret files (/run or /dev/shm)`);
        }
        mkdirSync(secretDir, { recursive: true, mode: 0o700 });
        path = join(secretDir, v.name);
      }
      rmSync(path, { recursive: true, force: true });
      mkdirSync(path, { recursive: true, mode: 0o755 });
      for (const [rel, b64] of Object.entries(files ?? {})) {
        const target = join(path, relativeInside(rel, `${field} file`));
        mkdirSync(resolve(target, '..'), { recursive: true, mode: 0o755 });
        writeFileSync(target, Buffer.from(b64, 'base64'), { mode });
      }
      return { type: 'bind', path, readOnly: true };
    }
    if (v.persistentVolumeClaim) {
      const name = claimVolumeName(owner.namespace, v.persistentVolumeClaim.claimName);
      await this.ensureVolume(name, {
        labels: {
          [VOLUME_LABELS.host]: owner.host,
          [VOLUME_LABELS.namespace]: owner.namespace,
          [VOLUME_LABELS.claim]: v.persistentVolumeClaim.claimName,
        },
      });
      return { type: 'volume', name, readOnly: v.persistentVolumeClaim.readOnly ?? false, memory: false };
    }
    throw new TemplateError(`${field}: needs one of emptyDir, configMap, secret or persistentVolumeClaim`);
  }

  private async ensureVolume(
    name: string,
    opts: { labels: Record<string, string>; driverOpts?: Record<string, string> },
  ) {
    try {
      await this.docker.getVolume(name).inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
      await this.docker.createVolume({
        Name: name,
        Labels: opts.labels,
        ...(opts.driverOpts ? { DriverOpts: opts.driverOpts } : {}),
      });
    }
  }

  /** Docker mounts of one container. */
  async mountsFor(
    t: InstanceTemplateSpec,
    mounts: VolumeMount[] | undefined,
    path: string,
    sources: Map<string, VolumeSource>,
  ): Promise<Docker.MountSettings[]> {
    const out: Docker.MountSettings[] = [];
    for (const [i, m] of (mounts ?? []).entries()) {
      const field = `${path}.volumeMounts[${i}]`;
      volumeFor(t, m, path);
      const src = sources.get(m.name);
      if (!src) throw new TemplateError(`${field}: volume "${m.name}" was not prepared`);
      const readOnly = src.readOnly || (m.readOnly ?? false);
      const sub = m.subPath ? relativeInside(m.subPath, `${field}.subPath`) : undefined;
      if (src.type === 'bind') {
        const source = sub ? join(src.path, sub) : src.path;
        if (sub && !src.readOnly) mkdirSync(source, { recursive: true, mode: 0o777 });
        out.push({ Type: 'bind', Source: source, Target: m.mountPath, ReadOnly: readOnly });
      } else if (sub) {
        if (src.memory)
          throw new TemplateError(`${field}.subPath: not supported on an emptyDir with medium Memory`);
        // Docker 20.10 has no volume subpath: bind the directory inside the volume's mount point instead.
        const info = (await this.docker.getVolume(src.name).inspect()) as { Mountpoint: string };
        const source = join(info.Mountpoint, sub);
        mkdirSync(source, { recursive: true, mode: 0o777 });
        out.push({ Type: 'bind', Source: source, Target: m.mountPath, ReadOnly: readOnly });
      } else {
        out.push({ Type: 'volume', Source: src.name, Target: m.mountPath, ReadOnly: readOnly });
      }
    }
    return out;
  }

  /** Removes the instance's directories and scratch Docker volumes; claims stay. */
  async remove(owner: VolumeOwner): Promise<void> {
    rmSync(this.dirOf(owner.namespace, owner.name), { recursive: true, force: true });
    const secretDir = this.secretDirOf(owner.namespace, owner.name);
    if (secretDir) rmSync(secretDir, { recursive: true, force: true });
    const list = await this.docker.listVolumes({
      filters: {
        label: [
          `${VOLUME_LABELS.host}=${owner.host}`,
          `${VOLUME_LABELS.namespace}=${owner.namespace}`,
          `${VOLUME_LABELS.instance}=${owner.name}`,
        ],
      },
    });
    for (const v of list.Volumes ?? []) {
      await this.docker
        .getVolume(v.Name)
        .remove()
        .catch((err: { statusCode?: number }) => {
          if (err.statusCode !== 404) throw err;
        });
    }
  }
}
