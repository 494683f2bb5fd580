/**
 * Keeps what the host advertises current: capacity (node:os, statfs) and which runtimes work (each driver's
 * runtime check), read at start and again every `intervalMs`. Emits `change` when either changed, so the agent reports
 * at once — e.g. dockerd came back, or the operator resized the VM.
 */
import { EventEmitter } from 'node:events';
import type { ResourceAmounts, Runtime } from '../../shared/api/index.js';
import type { Logger } from '../../shared/log.js';
import { SingleFlight } from '../deadline.js';
import type { Driver, RuntimeCheck } from '../drivers/driver.js';
import { type HostCapacity, readCapacity } from './capacity.js';

/** Options of {@link HostMonitor}. */
export interface HostMonitorOptions {
  /** Every driver this agent has, working or not. */
  drivers: Partial<Record<Runtime, Driver>>;
  /** Operator override of the allocatable amounts. */
  override?: Partial<ResourceAmounts>;
  /** The agent's state directory: disk is measured on its filesystem. */
  stateDir?: string;
  /** Interval between re-reads (default 60 s). */
  intervalMs?: number;
  /** How long a runtime check may take before it counts as failed (default 60 s). */
  checkTimeoutMs?: number;
  /** Logger. */
  log: Logger;
}

/** Kubernetes' `kubernetes.io/arch` value of a Node.js `process.arch`. */
export function kubeArch(arch: string): string {
  return (
    (
      {
        x64: 'amd64',
        ia32: '386',
        arm: 'arm',
        arm64: 'arm64',
        ppc64: 'ppc64le',
        s390x: 's390x',
        riscv64: 'riscv64',
      } as Record<string, string>
    )[arch] ?? arch
  );
}

export class HostMonitor extends EventEmitter {
  /** Latest capacity. */
  capacity: HostCapacity | undefined;
  /** Runtimes whose check passed, in driver order. */
  runtimes: Runtime[] = [];
  /** Latest check of each runtime (e.g. the VM runtime's accelerator: KVM or TCG, and why). */
  runtimeChecks: Partial<Record<Runtime, RuntimeCheck>> = {};
  private timer: NodeJS.Timeout | undefined;
  private details = new Map<Runtime, string>();
  /** One check per runtime at a time: a hung dockerd must not stall the agent's start, nor pile up checks. */
  private readonly checks = new SingleFlight<RuntimeCheck>();

  constructor(private readonly opts: HostMonitorOptions) {
    super();
  }

  /** Labels derived from the host: architecture and OS, as Kubernetes nodes carry them. */
  labels(): Record<string, string> {
    return { 'kubernetes.io/arch': kubeArch(process.arch), 'kubernetes.io/os': process.platform };
  }

  /** First read (awaited), then periodic ones. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.opts.intervalMs ?? 60_000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Re-reads capacity and re-checks runtimes; emits `change` when anything differs. */
  async refresh(): Promise<void> {
    const capacity = await readCapacity({ override: this.opts.override, stateDir: this.opts.stateDir }).catch(
      (err) => {
        this.opts.log.warn({ err: (err as Error).message }, 'capacity not readable');
        return this.capacity;
      },
    );
    const runtimes: Runtime[] = [];
    for (const [runtime, driver] of Object.entries(this.opts.drivers) as Array<[Runtime, Driver]>) {
      const check = await this.checks
        .run(
          runtime,
          () => driver.checkRuntime(),
          this.opts.checkTimeoutMs ?? 60_000,
          `the ${runtime} runtime check`,
        )
        .catch((err): RuntimeCheck => ({ ok: false, detail: (err as Error).message }));
      // Logged when the outcome changes, not when only a duration in it does.
      const outcome = `${check.ok} ${check.detail.replace(/\d+ ms/, '')}`;
      if (this.details.get(runtime) !== outcome) {
        this.opts.log.info({ runtime, ...check }, 'runtime check');
        this.details.set(runtime, outcome);
      }
      this.runtimeChecks[runtime] = check;
      if (check.ok) runtimes.push(runtime);
    }
    const changed =
      JSON.stringify([capacity?.capacity, capacity?.allocatable, runtimes]) !==
      JSON.stringify([this.capacity?.capacity, this.capacity?.allocatable, this.runtimes]);
    this.capacity = capacity;
    this.runtimes = runtimes;
    if (changed) this.emit('change');
  }
}
