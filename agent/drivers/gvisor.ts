/**
 * gVisor containers through Docker: every container of an instance runs under runtime `runsc`.
 * Containers carry labels naming host, namespace, instance and template hash; those labels are how
 * `list` finds what runs on this host, including what an agent started before a restart.
 *
 * An instance with Network attachments (`InstanceRequest.interfaces`) gets a network-namespace holder first
 * (netns-holder.ts): it owns the published ports, the host's network moves the instance's interfaces into its
 * namespace, and only then are the instance's containers created, joining that namespace. Without attachments the
 * first container owns the namespace, as it always did.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { isVmImage } from '../../shared/api/template.js';
import { writeFileAtomic } from '../../shared/atomic-file.js';
import type { Logger } from '../../shared/log.js';
import type { InterfaceAssignment, ResolvedValues } from '../../shared/nats/messages.js';
import { safeName } from '../../shared/os.js';
import type { HostNetwork } from '../network/host-network.js';
import { instanceKey, NO_HOST_NETWORK } from './attachments.js';
import { Docker as DockerClient } from './docker.js';
import { dockerExec, dockerLogs } from './docker-output.js';
import type { Driver, ExecResult, InstanceRequest, InstanceState, RuntimeCheck } from './driver.js';
import {
  CREATED_NOT_STARTED,
  HOLDER_DOWN,
  instanceStateOf,
  LABELS,
  type ObservedContainer,
} from './gvisor-state.js';
import { ensureHolderImage, holderCreateOptions } from './netns-holder.js';
import type { LogOptions, OutputCallback, OutputSource } from './output.js';
import { launchSandbox } from './sandbox-launch.js';
import {
  containerLimits,
  containerPath,
  containersOf,
  registryOf,
  resolveEnv,
  TemplateError,
} from './template.js';
import { defaultSecretRoot, InstanceVolumes } from './volumes.js';

/** Options of {@link GvisorDriver}. */
export interface GvisorDriverOptions {
  /** This host's name; only containers labelled with it are ours. */
  host: string;
  /** Docker client; defaults to the local socket. */
  docker?: Docker;
  /** OCI runtime name registered in dockerd. */
  runtimeName?: string;
  /** Host address ports are published on (127.0.0.1 in tests and dev). */
  publishAddress?: string;
  /** Directory holding each instance's emptyDir directories and configMap files. */
  stateDir: string;
  /** Directory on a tmpfs for secret files (default /run/edgeplane/<host> or /dev/shm/edgeplane/<host>). */
  secretDir?: string;
  /** The host's network, which attaches instances to Networks; absent: instances with attachments are refused. */
  network?: HostNetwork;
  /** Logger. */
  log: Logger;
}

export class GvisorDriver implements Driver {
  readonly runtime = 'gvisor' as const;
  private readonly docker: Docker;
  private readonly runtimeName: string;
  private readonly publishAddress: string;
  private readonly volumes: InstanceVolumes;
  /** The last sandbox launch that worked, and the dockerd/runtime it worked with. */
  private sandboxOk: { identity: string; at: number; detail: string } | undefined;

  constructor(private readonly opts: GvisorDriverOptions) {
    this.docker = opts.docker ?? new DockerClient();
    this.runtimeName = opts.runtimeName ?? 'runsc';
    this.publishAddress = opts.publishAddress ?? '0.0.0.0';
    this.volumes = new InstanceVolumes(
      this.docker,
      join(opts.stateDir, 'instances'),
      opts.secretDir ?? defaultSecretRoot(opts.host),
    );
  }

  /** dockerd answers, has the runtime registered, and a sandbox of it actually runs a program (x86-64 hosts). */
  async checkRuntime(): Promise<RuntimeCheck> {
    let version: string | undefined;
    let runtimeInfo: unknown;
    try {
      const info = (await this.docker.info()) as {
        Runtimes?: Record<string, unknown>;
        ServerVersion?: string;
      };
      version = info.ServerVersion;
      runtimeInfo = info.Runtimes?.[this.runtimeName];
      if (!runtimeInfo) {
        return { ok: false, detail: `dockerd ${version} has no runtime ${this.runtimeName}` };
      }
    } catch (err) {
      return { ok: false, detail: `docker unreachable: ${(err as Error).message}` };
    }
    if (process.arch !== 'x64')
      return { ok: true, detail: `dockerd ${version} with runtime ${this.runtimeName} (registered)` };
    // A sandbox launch costs about half a CPU-second: while dockerd and runsc stay the same, one every 10 min.
    const identity = `${version} ${JSON.stringify(runtimeInfo)}`;
    if (
      this.sandboxOk &&
      this.sandboxOk.identity === identity &&
      Date.now() - this.sandboxOk.at < 10 * 60_000
    ) {
      return { ok: true, detail: this.sandboxOk.detail };
    }
    try {
      const ms = await launchSandbox(this.docker, this.runtimeName, this.opts.host);
      const detail = `dockerd ${version}: a ${this.runtimeName} sandbox ran in ${ms} ms`;
      this.sandboxOk = { identity, at: Date.now(), detail };
      return { ok: true, detail };
    } catch (err) {
      this.sandboxOk = undefined;
      return {
        ok: false,
        detail: `dockerd ${version}: a ${this.runtimeName} sandbox did not run: ${(err as Error).message}`,
      };
    }
  }

  private containerName(namespace: string, name: string, container: string): string {
    return safeName(`edge_${this.opts.host}_${namespace}_${name}_${container}`);
  }

  private async listInstanceContainers(namespace?: string, name?: string): Promise<Docker.ContainerInfo[]> {
    const label = [`${LABELS.host}=${this.opts.host}`];
    if (namespace) label.push(`${LABELS.namespace}=${namespace}`);
    if (name) label.push(`${LABELS.instance}=${name}`);
    return this.docker.listContainers({ all: true, filters: { label } });
  }

  /** Pulls `image` only when dockerd does not have it, with the registry credentials of imagePullSecrets. */
  private async ensureImage(image: string, field: string, values: ResolvedValues | undefined): Promise<void> {
    try {
      await this.docker.getImage(image).inspect();
      return;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
    const registry = registryOf(image);
    const auth = values?.registryAuth.find(
      (a) => registryOf(`${a.server.replace(/^https?:\/\//, '')}/x`) === registry,
    );
    this.opts.log.info({ image, registry, withCredentials: Boolean(auth) }, 'pulling image');
    try {
      const stream = await this.docker.pull(
        image,
        auth
          ? { authconfig: { username: auth.username, password: auth.password, serveraddress: auth.server } }
          : {},
      );
      await new Promise<void>((resolve, reject) =>
        this.docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())),
      );
    } catch (err) {
      throw new TemplateError(
        `${field}: image ${image} is not on this host and pulling it failed: ${(err as Error).message}`,
      );
    }
  }

  /** Rejects what this driver cannot run, naming the field, before anything is created. */
  private validate(req: InstanceRequest): void {
    const t = req.template;
    if (req.interfaces?.length && !this.opts.network) throw new TemplateError(NO_HOST_NETWORK);
    for (const [i, c] of containersOf(t).entries()) {
      if (isVmImage(c.image)) {
        throw new TemplateError(
          `${containerPath(t, i)}.image: ${c.image} is a VM image; it cannot run in a container`,
        );
      }
    }
  }

  async start(req: InstanceRequest): Promise<InstanceState> {
    // Where a start's time goes, logged at debug when it ends (read by bench/apply.ts): `sandboxMs` is the
    // containers' start calls (runsc creating and booting the sandbox), the rest is dockerd and our own work.
    const t0 = performance.now();
    const took = { inspectMs: 0, prepareMs: 0, holderMs: 0, createMs: 0, sandboxMs: 0 };
    const since = (t: number) => Math.round(performance.now() - t);
    const existing = await this.inspect(req.namespace, req.name);
    took.inspectMs = since(t0);
    const specs = containersOf(req.template);
    if (
      existing &&
      existing.templateHash === req.templateHash &&
      existing.phase !== 'Stopped' &&
      this.isComplete(existing, req)
    ) {
      return existing;
    }
    if (existing) await this.destroy(req.namespace, req.name);
    this.validate(req);
    const t = req.template;
    const limits = containerLimits(t, req.limits);
    const env = specs.map((c, i) => resolveEnv(c, containerPath(t, i), req.values));
    const owner = { host: this.opts.host, namespace: req.namespace, name: req.name };
    const created: Docker.Container[] = [];
    const attachments = req.interfaces ?? [];
    const labels = {
      ...Object.fromEntries(Object.entries(req.labels).map(([k, v]) => [`instance.label/${k}`, v])),
      [LABELS.host]: this.opts.host,
      [LABELS.namespace]: req.namespace,
      [LABELS.instance]: req.name,
      [LABELS.workload]: req.workload,
      [LABELS.templateHash]: req.templateHash,
    };
    // Every container of the instance shares one network namespace, so all ports live there.
    const exposed: Record<string, object> = {};
    const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
    const portNames: Record<string, string> = {};
    for (const p of specs.flatMap((s) => s.ports ?? [])) {
      const key = `${p.containerPort}/${(p.protocol ?? 'TCP').toLowerCase()}`;
      exposed[key] = {};
      bindings[key] = [{ HostIp: this.publishAddress, HostPort: p.hostPort ? String(p.hostPort) : '' }];
      if (p.name) portNames[key] = p.name;
    }
    try {
      let mark = performance.now();
      const sources = await this.volumes.prepare(owner, t, req.values);
      took.prepareMs = since(mark);
      let networkOwner: string | undefined;
      if (attachments.length) {
        mark = performance.now();
        networkOwner = await this.startHolder(req, labels, { exposed, bindings, portNames }, created);
        took.holderMs = since(mark);
      }
      for (const [index, c] of specs.entries()) {
        const path = containerPath(t, index);
        await this.ensureImage(c.image, `${path}.image`, req.values);
        const ownsNetwork = networkOwner === undefined;
        const mounts = await this.volumes.mountsFor(t, c.volumeMounts, path, sources);
        const limit = limits[index]!;
        mark = performance.now();
        const container = await this.docker.createContainer({
          name: this.containerName(req.namespace, req.name, c.name),
          Image: c.image,
          ...(c.command ? { Entrypoint: c.command } : {}),
          ...(c.args ? { Cmd: c.args } : {}),
          ...(c.workingDir ? { WorkingDir: c.workingDir } : {}),
          Env: env[index]!,
          ExposedPorts: ownsNetwork ? exposed : {},
          Labels: {
            ...labels,
            [LABELS.container]: c.name,
            [LABELS.index]: String(index),
            ...(ownsNetwork ? { [LABELS.portNames]: JSON.stringify(portNames) } : {}),
          },
          HostConfig: {
            Runtime: this.runtimeName,
            // Docker restarts an exited container itself, with exponential backoff (100 ms doubling to 1 min),
            // so instances keep running through agent restarts and NATS outages.
            RestartPolicy: { Name: 'unless-stopped' },
            // A limit above the host's cores is refused by Docker; the host has no more to give anyway.
            NanoCpus: Math.round(Math.min(limit.cpuMillis * 1e6, availableParallelism() * 1e9)),
            Memory: Math.round(limit.memoryBytes),
            Mounts: mounts,
            ...(ownsNetwork ? { PortBindings: bindings } : { NetworkMode: `container:${networkOwner}` }),
          },
        });
        created.push(container);
        took.createMs += since(mark);
        mark = performance.now();
        await container.start();
        took.sandboxMs += since(mark);
        if (ownsNetwork) networkOwner = container.id;
      }
    } catch (err) {
      // Leave nothing half-created behind.
      for (const c of created.reverse()) await c.remove({ force: true, v: true }).catch(() => undefined);
      if (attachments.length) await this.opts.network?.detach(instanceKey(req)).catch(() => undefined);
      await this.volumes.remove(owner).catch(() => undefined);
      throw err;
    }
    const state = await this.inspect(req.namespace, req.name);
    if (!state) throw new Error(`instance ${req.namespace}/${req.name} vanished right after start`);
    this.opts.log.debug(
      { instance: `${req.namespace}/${req.name}`, ms: since(t0), ...took },
      'containers started',
    );
    return state;
  }

  /**
   * Creates and starts the instance's network-namespace holder (netns-holder.ts), then has the host's network
   * move the instance's interfaces into its namespace. Returns the holder's id; pushes it on `created`.
   */
  private async startHolder(
    req: InstanceRequest,
    labels: Record<string, string>,
    ports: {
      exposed: Record<string, object>;
      bindings: Record<string, Array<{ HostIp: string; HostPort: string }>>;
      portNames: Record<string, string>;
    },
    created: Docker.Container[],
  ): Promise<string> {
    const network = this.opts.network;
    if (!network) throw new TemplateError(NO_HOST_NETWORK);
    await ensureHolderImage(this.docker);
    const holder = await this.docker.createContainer(
      holderCreateOptions({
        name: safeName(`edge_${this.opts.host}_${req.namespace}_${req.name}.netns-holder`),
        labels,
        ...ports,
      }),
    );
    created.push(holder);
    await holder.start();
    const pid = (await holder.inspect()).State.Pid;
    if (!pid) throw new Error(`the network namespace holder of ${instanceKey(req)} has no process`);
    await network.attach(
      instanceKey(req),
      { kind: 'netns', path: `/proc/${pid}/ns/net` },
      req.interfaces ?? [],
    );
    return holder.id;
  }

  /** Has the host's network rewrite the instance's ports in its holder's namespace (see {@link Driver.reattach}). */
  async reattach(namespace: string, name: string, interfaces: InterfaceAssignment[]): Promise<void> {
    const network = this.opts.network;
    if (!network) throw new TemplateError(NO_HOST_NETWORK);
    const holder = (await this.listInstanceContainers(namespace, name)).find(
      (c) => c.Labels[LABELS.role] !== undefined,
    );
    if (!holder) throw new Error(`instance ${namespace}/${name} has no network namespace holder`);
    const pid = (await this.docker.getContainer(holder.Id).inspect()).State.Pid;
    if (!pid) throw new Error(`the network namespace holder of ${namespace}/${name} has no process`);
    await network.attach(
      instanceKey({ namespace, name }),
      { kind: 'netns', path: `/proc/${pid}/ns/net` },
      interfaces,
    );
  }

  /**
   * Every container of the template exists and has been started at least once. A template the driver cannot read
   * counts as complete: starting it again would fail the same way.
   */
  isComplete(state: InstanceState, req: InstanceRequest): boolean {
    let wanted: number;
    try {
      wanted = containersOf(req.template).length;
    } catch {
      return true;
    }
    return (
      state.containers.length === wanted &&
      state.containers.every((c) => c.reason !== CREATED_NOT_STARTED) &&
      state.message !== HOLDER_DOWN
    );
  }

  async inspect(namespace: string, name: string): Promise<InstanceState | undefined> {
    return this.stateOf(await this.listInstanceContainers(namespace, name));
  }

  /**
   * The instance of these containers (one instance's), from their labels and docker inspect; undefined when none
   * is left. A container removed between the listing and its inspect (an instance being replaced or removed,
   * a window that grows with the host's load) is gone, not a failure to observe the runtime: a failed list
   * reports every instance of the host Unknown and not ready.
   */
  private async stateOf(list: Docker.ContainerInfo[]): Promise<InstanceState | undefined> {
    const observed: ObservedContainer[] = [];
    for (const info of list) {
      try {
        observed.push({ info, inspect: await this.docker.getContainer(info.Id).inspect() });
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode !== 404) throw err;
      }
    }
    if (!observed.length) return undefined;
    const { [LABELS.namespace]: namespace = '', [LABELS.instance]: name = '' } = observed[0]!.info.Labels;
    return instanceStateOf(observed, this.probeRestarts(namespace, name), this.runtimeName);
  }

  async stop(namespace: string, name: string, graceSeconds: number): Promise<void> {
    for (const info of await this.listInstanceContainers(namespace, name)) {
      // The holder only holds the namespace (it ignores SIGTERM, as PID 1 without a handler): destroy removes it.
      if (info.Labels[LABELS.role] !== undefined) continue;
      if (info.State === 'running' || info.State === 'restarting') {
        await this.docker
          .getContainer(info.Id)
          .stop({ t: graceSeconds })
          .catch((err: { statusCode?: number }) => {
            if (err.statusCode !== 304 && err.statusCode !== 404) throw err;
          });
      }
    }
  }

  async destroy(namespace: string, name: string): Promise<void> {
    // Sidecars join the first container's (or the holder's) network namespace: remove them before it.
    const list = await this.listInstanceContainers(namespace, name);
    const order = (c: Docker.ContainerInfo) =>
      c.Labels[LABELS.role] !== undefined ? -1 : Number(c.Labels[LABELS.index]);
    list.sort((a, b) => order(b) - order(a));
    for (const info of list) {
      await this.docker
        .getContainer(info.Id)
        .remove({ force: true, v: true })
        .catch((err: { statusCode?: number }) => {
          if (err.statusCode !== 404) throw err;
        });
    }
    await this.opts.network?.detach(instanceKey({ namespace, name }));
    await this.volumes.remove({ host: this.opts.host, namespace, name });
  }

  private async containerOf(namespace: string, name: string, container: string): Promise<Docker.Container> {
    const info = (await this.listInstanceContainers(namespace, name)).find(
      (c) => c.Labels[LABELS.container] === container,
    );
    if (!info) throw new Error(`instance ${namespace}/${name} has no container ${container}`);
    return this.docker.getContainer(info.Id);
  }

  async exec(
    namespace: string,
    name: string,
    container: string,
    command: string[],
    timeoutMs: number,
  ): Promise<ExecResult> {
    const c = await this.containerOf(namespace, name, container);
    const exec = await c.exec({ Cmd: command, AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({ hijack: true, stdin: false });
    let output = '';
    const sink = new PassThrough();
    sink.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    this.docker.modem.demuxStream(stream, sink, sink);
    const done = new Promise<void>((resolve) => {
      stream.on('end', () => resolve());
      stream.on('error', () => resolve());
    });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      done.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      stream.destroy();
      return { exitCode: -1, output: `timed out after ${timeoutMs} ms` };
    }
    const info = await exec.inspect();
    return { exitCode: info.ExitCode ?? -1, output: output.slice(-1024) };
  }

  /** `docker logs` of one container (`edgectl logs`). */
  async logs(
    namespace: string,
    name: string,
    options: LogOptions,
    onData: OutputCallback,
  ): Promise<OutputSource> {
    const c = await this.containerOf(namespace, name, options.container ?? '');
    return dockerLogs(this.docker, c.id, options, onData);
  }

  /** `docker exec` in one container, streamed (`edgectl exec`). */
  async execStream(
    namespace: string,
    name: string,
    container: string,
    command: string[],
    onData: OutputCallback,
  ): Promise<OutputSource> {
    const c = await this.containerOf(namespace, name, container);
    return dockerExec(this.docker, c.id, command, onData);
  }

  /**
   * Restarts one container (a failed liveness probe). Docker counts only its own policy restarts, so the agent
   * keeps these in the instance's state directory (written atomically) and adds them to the reported restart
   * count. A count that cannot be written (a full state disk) never holds the restart back: it is logged.
   */
  async restartContainer(
    namespace: string,
    name: string,
    container: string,
    graceSeconds: number,
  ): Promise<void> {
    const c = await this.containerOf(namespace, name, container);
    const counts = this.probeRestarts(namespace, name);
    counts[container] = (counts[container] ?? 0) + 1;
    try {
      mkdirSync(this.volumes.dirOf(namespace, name), { recursive: true });
      writeFileAtomic(this.restartsFile(namespace, name), JSON.stringify(counts));
    } catch (err) {
      this.opts.log.warn(
        { instance: `${namespace}/${name}`, container, err: (err as Error).message },
        'liveness restart not counted on disk; restarting all the same',
      );
    }
    await c.restart({ t: graceSeconds });
  }

  private restartsFile(namespace: string, name: string): string {
    return join(this.volumes.dirOf(namespace, name), 'probe-restarts.json');
  }

  /** Restarts after failed liveness probes, by container. */
  private probeRestarts(namespace: string, name: string): Record<string, number> {
    try {
      return JSON.parse(readFileSync(this.restartsFile(namespace, name), 'utf8')) as Record<string, number>;
    } catch {
      return {};
    }
  }

  /** Every instance of this host, from its containers' labels (see {@link Driver.list}). */
  async list(): Promise<InstanceState[]> {
    const groups = new Map<string, Docker.ContainerInfo[]>();
    for (const info of await this.listInstanceContainers()) {
      const key = `${info.Labels[LABELS.namespace]}/${info.Labels[LABELS.instance]}`;
      groups.set(key, [...(groups.get(key) ?? []), info]);
    }
    const out: InstanceState[] = [];
    for (const list of groups.values()) {
      const state = await this.stateOf(list);
      if (state) out.push(state);
    }
    return out;
  }
}
