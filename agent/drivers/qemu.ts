/**
 * QEMU virtual machines for VM images (`projects/<project>/global/images/<name>`). The image catalog gives the
 * artifacts (kernel + initrd, or a disk image), fetched and verified through the artifact cache. Each VM is a
 * daemonized qemu process with its own directory holding `vm.json` (identity, like the container labels), its
 * pid file, QMP socket and serial console log; that directory is how a restarted agent adopts it.
 *
 * `vm.json` is written atomically (shared/atomic-file.ts). A directory whose `vm.json` exists but cannot be read
 * is never taken for "no VM": its qemu may still run, so starting over it would orphan that qemu (or kill it and
 * recreate its disk). `inspect`/`start` throw an error naming the file (the instance reports it, nothing is
 * started); `list` leaves such a directory out and logs it as an error every pass.
 *
 * KVM is used when a Linux kernel boots on it here (the KVM boot test, kvm-boot-test.ts, with a timeout, once per
 * host boot); TCG otherwise. The instance's runtime says which (`qemu-kvm`, `qemu-tcg`), and so does the runtime
 * check's detail.
 *
 * A VM with Network attachments gets a tap per attachment from the host's network (programmed before qemu starts,
 * removed with the VM) as a virtio NIC with the assigned MAC, after its user-network NIC (published ports and
 * egress, as before); the guest gets the address by DHCP from a static lease (vm-dhcp.ts).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { writeFileAtomic } from '../../shared/atomic-file.js';
import type { Logger } from '../../shared/log.js';
import type { InterfaceAssignment } from '../../shared/nats/messages.js';
import { freePort, safeName } from '../../shared/os.js';
import type { ArtifactCache, Catalog, CatalogImage } from '../images/catalog.js';
import type { HostNetwork } from '../network/host-network.js';
import { instanceKey, NO_HOST_NETWORK } from './attachments.js';
import { consoleLogs } from './console-output.js';
import type { Driver, InstanceRequest, InstanceState, RuntimeCheck } from './driver.js';
import { type Accel, type AccelChoice, kvmBootTest, kvmTestKernel } from './kvm-boot-test.js';
import type { LogOptions, OutputCallback, OutputSource } from './output.js';
import { qmp } from './qmp.js';
import { tapFdPlaceholder, withTapsOpened } from './tap-open.js';
import { TemplateError } from './template.js';
import { VmDhcp } from './vm-dhcp.js';
import { qemuPidOf, readVmRecord, runsIn, type VmRecord } from './vm-dir.js';

export type { Accel } from './kvm-boot-test.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
/** Smallest VM memory the driver starts. */
export const MIN_VM_MEMORY_BYTES = 64 * MiB;
/** How long {@link QemuDriver.checkRuntime} waits for the KVM boot test before answering without it. */
const KVM_TEST_WAIT_MS = 2000;

/** Options of {@link QemuDriver}. */
export interface QemuDriverOptions {
  /** This host; only VMs recorded with it are ours. */
  host: string;
  /** Directory of the VMs' own directories. */
  vmDir: string;
  /** The image catalog (reloaded by the caller on change). */
  catalog: () => Catalog;
  /** Verified artifact cache. */
  cache: ArtifactCache;
  /** Host address forwarded ports listen on. */
  publishAddress?: string;
  /** Force an accelerator instead of running the KVM boot test. */
  accel?: Accel;
  /** How long the KVM boot test may take before TCG is used (default 8 s). */
  kvmTestTimeoutMs?: number;
  /** Kernel (bzImage) the KVM boot test boots (default: a cached catalog kernel, else the host's). */
  kvmTestKernel?: string;
  /** qemu binary (default qemu-system-x86_64). */
  qemuBinary?: string;
  /** The host's network, which makes the VMs' taps; absent: VMs with Network attachments are refused. */
  network?: HostNetwork;
  /**
   * Network namespace the host's network (and so the taps) lives in, as a path (`/run/netns/<name>`); absent:
   * the machine's own.
   */
  networkNamespace?: string;
  /** Directory of the VMs' DHCP helpers (default /run/edgeplane/vm-dhcp/<host>); dnsmasq runs as nobody and must read it. */
  dhcpDir?: string;
  /** Logger. */
  log: Logger;
}

export class QemuDriver implements Driver {
  readonly runtime = 'vm' as const;
  private accel: { kernel: string; result: Promise<AccelChoice> } | undefined;
  private readonly qemu: string;
  private readonly publishAddress: string;
  private readonly dhcp: VmDhcp | undefined;

  constructor(private readonly opts: QemuDriverOptions) {
    this.qemu = opts.qemuBinary ?? 'qemu-system-x86_64';
    this.publishAddress = opts.publishAddress ?? '0.0.0.0';
    this.dhcp = opts.network
      ? new VmDhcp({
          host: opts.host,
          dir: opts.dhcpDir ?? join('/run/edgeplane/vm-dhcp', safeName(opts.host)),
          ...(opts.networkNamespace ? { networkNamespace: opts.networkNamespace } : {}),
          log: opts.log,
        })
      : undefined;
  }

  /** qemu runs (its version), and which accelerator VMs get, when the KVM boot test has answered. */
  async checkRuntime(): Promise<RuntimeCheck> {
    try {
      const { stdout } = await run(this.qemu, ['--version'], { timeout: 5000 });
      const version = stdout.split('\n')[0]?.trim() ?? '';
      // The KVM boot test may take its whole timeout (a hanging nested KVM): the runtime works either way, so the
      // host does not wait for it; the next check reports the outcome.
      const accel = await Promise.race([
        this.accelerator(),
        sleep(KVM_TEST_WAIT_MS, undefined, { ref: false }),
      ]);
      return {
        ok: true,
        detail: `${version}; ${accel?.detail ?? 'accelerator: probing KVM (TCG until known)'}`,
      };
    } catch (err) {
      return { ok: false, detail: `${this.qemu} unusable: ${(err as Error).message}` };
    }
  }

  /**
   * The accelerator VMs get: the configured one, else the KVM boot test's outcome (kvm-boot-test.ts), run once
   * per kernel to boot; a kernel that turns up later (a catalog kernel cached by a VM start) is tested then.
   */
  accelerator(): Promise<AccelChoice> {
    if (this.opts.accel)
      return Promise.resolve({ accel: this.opts.accel, detail: `${this.opts.accel} (configured)` });
    const kernel = kvmTestKernel(this.opts.kvmTestKernel, this.opts.catalog(), this.opts.cache) ?? '';
    if (this.accel?.kernel !== kernel) {
      const result = kvmBootTest({
        qemu: this.qemu,
        kernel,
        vmDir: this.opts.vmDir,
        timeoutMs: this.opts.kvmTestTimeoutMs ?? 8000,
        log: this.opts.log,
      });
      this.accel = { kernel, result };
    }
    return this.accel.result;
  }

  private dirOf(namespace: string, name: string): string {
    return join(this.opts.vmDir, safeName(`${namespace}_${name}`));
  }

  /** Rejects template fields a VM cannot honour, naming them. */
  private validate(req: InstanceRequest): CatalogImage {
    const t = req.template;
    const unsupported: Array<[unknown, string]> = [
      [t.containers, 'containers'],
      [t.command, 'command'],
      [t.args, 'args'],
      [t.env, 'env'],
      [t.volumes, 'volumes'],
      [t.volumeMounts, 'volumeMounts'],
      [t.readinessProbe, 'readinessProbe'],
      [t.livenessProbe, 'livenessProbe'],
      [t.imagePullSecrets, 'imagePullSecrets'],
    ];
    for (const [value, field] of unsupported) {
      if (value !== undefined) throw new TemplateError(`template.spec.${field}: not supported for VM images`);
    }
    if (req.interfaces?.length && !this.opts.network) throw new TemplateError(NO_HOST_NETWORK);
    for (const [i, p] of (t.ports ?? []).entries()) {
      if (p.protocol === 'UDP')
        throw new TemplateError(`template.spec.ports[${i}].protocol: UDP is not forwarded to VMs`);
    }
    const image = this.opts.catalog().images[t.image ?? ''];
    if (!image)
      throw new TemplateError(`template.spec.image: ${t.image} is not in this host's image catalog`);
    const vcpus = Math.max(1, Math.ceil(req.limits.cpuMillis / 1000));
    if (vcpus > availableParallelism()) {
      throw new TemplateError(
        `limits.cpu: the VM needs ${vcpus} vCPUs; this host has ${availableParallelism()}`,
      );
    }
    if (req.limits.memoryBytes < MIN_VM_MEMORY_BYTES) {
      throw new TemplateError(`limits.memory: ${req.limits.memoryBytes} bytes is below the 64Mi a VM needs`);
    }
    return image;
  }

  async start(req: InstanceRequest): Promise<InstanceState> {
    const existing = await this.inspect(req.namespace, req.name);
    if (existing && existing.templateHash === req.templateHash && existing.phase !== 'Stopped')
      return existing;
    const restartCount =
      existing && existing.templateHash === req.templateHash
        ? (existing.containers[0]?.restartCount ?? 0) + 1
        : 0;
    if (existing) await this.destroy(req.namespace, req.name);
    const image = this.validate(req);
    const dir = this.dirOf(req.namespace, req.name);
    const stray = existing ? undefined : qemuPidOf(dir);
    if (stray)
      throw new Error(`qemu pid ${stray} runs in ${dir} without a vm.json: refusing to start a second VM`);
    try {
      const [kernel, initrd, disk] = await Promise.all([
        image.kernel ? this.opts.cache.fetch(image.kernel) : undefined,
        image.initrd ? this.opts.cache.fetch(image.initrd) : undefined,
        image.disk ? this.opts.cache.fetch(image.disk) : undefined,
      ]).catch((err: Error) => {
        throw new TemplateError(`template.spec.image: ${req.template.image}: ${err.message}`);
      });
      const { accel } = await this.accelerator();
      mkdirSync(dir, { recursive: true });
      const ports: VmRecord['ports'] = [];
      for (const p of req.template.ports ?? []) {
        const hostPort = p.hostPort ?? (await freePort(this.publishAddress));
        ports.push({
          ...(p.name ? { name: p.name } : {}),
          containerPort: p.containerPort,
          hostIP: this.publishAddress,
          hostPort,
        });
      }
      const record: VmRecord = {
        host: this.opts.host,
        namespace: req.namespace,
        name: req.name,
        workload: req.workload,
        templateHash: req.templateHash,
        accel,
        ports,
        startedAt: new Date().toISOString(),
        restartCount,
      };
      writeFileAtomic(join(dir, 'vm.json'), JSON.stringify(record));
      const nics = await this.attach(req, dir);
      const hostfwd = ports.map((p) => `,hostfwd=tcp:${p.hostIP}:${p.hostPort}-:${p.containerPort}`).join('');
      const args = [
        '-name',
        safeName(`${req.namespace}_${req.name}`),
        '-accel',
        accel,
        '-smp',
        String(Math.max(1, Math.ceil(req.limits.cpuMillis / 1000))),
        '-m',
        `${Math.floor(req.limits.memoryBytes / MiB)}M`,
        '-nodefaults',
        '-display',
        'none',
        '-serial',
        `file:${join(dir, 'console.log')}`,
        '-qmp',
        `unix:${join(dir, 'qmp.sock')},server=on,wait=off`,
        '-pidfile',
        join(dir, 'qemu.pid'),
        '-netdev',
        `user,id=net0${hostfwd}`,
        '-device',
        'virtio-net-pci,netdev=net0',
        ...nics.args,
        '-daemonize',
      ];
      if (kernel) {
        args.push('-kernel', kernel, '-append', image.append ?? 'console=ttyS0 panic=-1');
        if (initrd) args.push('-initrd', initrd);
      }
      if (disk) {
        const overlay = join(dir, 'disk.qcow2');
        await run('qemu-img', [
          'create',
          '-f',
          'qcow2',
          '-F',
          image.disk?.format ?? 'qcow2',
          '-b',
          disk,
          overlay,
        ]);
        args.push('-drive', `file=${overlay},if=virtio,format=qcow2`);
      }
      this.opts.log.info(
        { instance: `${req.namespace}/${req.name}`, accel, image: req.template.image },
        'starting VM',
      );
      const command =
        this.opts.networkNamespace && nics.taps.length
          ? withTapsOpened(this.opts.networkNamespace, nics.taps, this.qemu, args)
          : { file: this.qemu, args };
      await run(command.file, command.args, { cwd: dir, timeout: 30_000 }).catch(
        (err: Error & { stderr?: string }) => {
          throw new Error(`qemu did not start: ${(err.stderr ?? err.message).trim()}`);
        },
      );
    } catch (err) {
      await this.destroy(req.namespace, req.name).catch(() => undefined);
      throw err;
    }
    const state = await this.inspect(req.namespace, req.name);
    if (!state) throw new Error(`VM ${req.namespace}/${req.name} vanished right after start`);
    return state;
  }

  /**
   * The VM's Network attachments: a tap per assignment from the host's network and the static DHCP leases, and the
   * qemu arguments of their NICs (`net1`… after the user network's `net0`).
   */
  private async attach(req: InstanceRequest, dir: string): Promise<{ args: string[]; taps: string[] }> {
    const assignments = req.interfaces ?? [];
    if (!assignments.length) return { args: [], taps: [] };
    if (!this.opts.network || !this.dhcp) throw new TemplateError(NO_HOST_NETWORK);
    const ports = await this.opts.network.attach(instanceKey(req), { kind: 'tap' }, assignments);
    await this.dhcp.ensure(basename(dir), assignments);
    const args: string[] = [];
    for (const [i, port] of ports.entries()) {
      const id = `net${i + 1}`;
      const tap = this.opts.networkNamespace
        ? `tap,id=${id},fd=${tapFdPlaceholder(i)}`
        : `tap,id=${id},ifname=${port.device},script=no,downscript=no`;
      args.push('-netdev', tap, '-device', `virtio-net-pci,netdev=${id},mac=${port.assignment.mac}`);
    }
    return { args, taps: ports.map((p) => p.device) };
  }

  /** Has the host's network rewrite the VM's taps in place, and its leases (see {@link Driver.reattach}). */
  async reattach(namespace: string, name: string, interfaces: InterfaceAssignment[]): Promise<void> {
    if (!this.opts.network || !this.dhcp) throw new TemplateError(NO_HOST_NETWORK);
    await this.opts.network.attach(instanceKey({ namespace, name }), { kind: 'tap' }, interfaces);
    await this.dhcp.ensure(basename(this.dirOf(namespace, name)), interfaces);
  }

  /** A VM is one process: what is listed is complete. */
  isComplete(): boolean {
    return true;
  }

  /** The VM's serial console (`edgectl logs`); a VM has no exec (`execStream` is absent). */
  logs(namespace: string, name: string, options: LogOptions, onData: OutputCallback): Promise<OutputSource> {
    return consoleLogs(join(this.dirOf(namespace, name), 'console.log'), options, onData);
  }

  async inspect(namespace: string, name: string): Promise<InstanceState | undefined> {
    return this.stateOf(this.dirOf(namespace, name));
  }

  private async stateOf(dir: string): Promise<InstanceState | undefined> {
    const r = readVmRecord(dir, this.opts.host);
    if (!r) return undefined;
    const pid = qemuPidOf(dir);
    let status = 'exited';
    if (pid) {
      status = await qmp(join(dir, 'qmp.sock'), 'query-status')
        .then((s) => (s as { status?: string }).status ?? 'unknown')
        .catch(() => 'unknown');
    }
    const running = status === 'running';
    const phase = running ? 'Running' : !pid ? 'Stopped' : status === 'shutdown' ? 'Stopping' : 'Starting';
    return {
      namespace: r.namespace,
      name: r.name,
      workload: r.workload,
      templateHash: r.templateHash,
      phase,
      ready: running,
      runtime: `qemu-${r.accel}`,
      providerID: `qemu://${this.opts.host}/${safeName(`${r.namespace}_${r.name}`)}`,
      ports: r.ports,
      ips: [],
      containers: [
        {
          name: 'vm',
          state: running ? 'running' : pid ? 'waiting' : 'exited',
          ready: running,
          restartCount: r.restartCount,
          ...(running ? {} : { reason: pid ? `VM ${status}` : 'VM exited' }),
        },
      ],
      ...(running
        ? {}
        : { message: pid ? `VM is ${status}` : 'the VM is not running (powered off or crashed)' }),
      startedAt: r.startedAt,
      ...(pid ? { cpuSource: { kind: 'process' as const, pids: [pid] } } : {}),
    };
  }

  /**
   * Waits until the VM's qemu is gone: its pid file (qemu removes it early in its exit) and the process itself,
   * which may still be flushing and closing its disk images for a moment after.
   */
  private async waitGone(dir: string, pid: number, ms: number): Promise<boolean> {
    const gone = () => !qemuPidOf(dir) && !runsIn(pid, dir);
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (gone()) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return gone();
  }

  /** ACPI power button, then QMP quit after the grace period, then SIGKILL. */
  async stop(namespace: string, name: string, graceSeconds: number): Promise<void> {
    const dir = this.dirOf(namespace, name);
    const sock = join(dir, 'qmp.sock');
    const pid = qemuPidOf(dir);
    if (!pid) return;
    await qmp(sock, 'system_powerdown').catch(() => undefined);
    if (await this.waitGone(dir, pid, graceSeconds * 1000)) return;
    await qmp(sock, 'quit').catch(() => undefined);
    if (await this.waitGone(dir, pid, 5000)) return;
    if (runsIn(pid, dir)) process.kill(pid, 'SIGKILL');
    await this.waitGone(dir, pid, 5000);
  }

  async destroy(namespace: string, name: string): Promise<void> {
    const dir = this.dirOf(namespace, name);
    if (qemuPidOf(dir)) await this.stop(namespace, name, 0);
    rmSync(dir, { recursive: true, force: true });
    if (this.opts.network) {
      await this.opts.network.detach(instanceKey({ namespace, name }));
      await this.dhcp?.release(basename(dir), (vm) => existsSync(join(this.opts.vmDir, vm, 'vm.json')));
    }
  }

  /** Every VM directory of this host with its state (see {@link Driver.list}). */
  async list(): Promise<InstanceState[]> {
    let entries: string[] = [];
    try {
      entries = readdirSync(this.opts.vmDir);
    } catch {
      return [];
    }
    const out: InstanceState[] = [];
    for (const e of entries) {
      try {
        const s = await this.stateOf(join(this.opts.vmDir, e));
        if (s) out.push(s);
      } catch (err) {
        this.opts.log.error({ dir: join(this.opts.vmDir, e), err: (err as Error).message }, 'unreadable VM');
      }
    }
    return out;
  }
}
