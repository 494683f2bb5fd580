/**
 * What the Instances hold on each host: the sum of their requests and their count, indexed once from the
 * Instance cache and rebuilt only after an Instance changed. The host sync (status of every host on each
 * flush) and placement (every host on each pass) both read it, so neither rescans every Instance per host.
 */
import type { ResourceAmounts } from '../../shared/api/index.js';

/** The Instance fields the index reads. */
export interface AllocatingInstance {
  /** `spec.host`, `spec.location` and `spec.resources` (the request; absent counts as zero). */
  spec: { host: string; location: string; resources?: ResourceAmounts | undefined };
}

/** What the Instances on one host hold. */
export interface HostAllocation {
  /** Sum of their requests. */
  allocated: ResourceAmounts;
  /** How many there are. */
  instances: number;
  /** The location of the first of them (for a host that has not reported yet). */
  location: string;
}

/** The allocation per host, kept in step with an Instance source. */
export class AllocationIndex {
  private index: Map<string, HostAllocation> | undefined;

  constructor(
    private readonly instances: {
      list(): readonly AllocatingInstance[];
      onChange(fn: () => void): void;
    },
  ) {
    instances.onChange(() => {
      this.index = undefined;
    });
  }

  /** What the Instances on that host hold (a copy; zero when none). */
  of(host: string): { allocated: ResourceAmounts; instances: number } {
    const a = this.all().get(host);
    return a
      ? { allocated: { ...a.allocated }, instances: a.instances }
      : { allocated: { cpuMillis: 0, memoryBytes: 0 }, instances: 0 };
  }

  /** Every host some Instance is placed on. Read-only: callers copy what they keep. */
  all(): ReadonlyMap<string, Readonly<HostAllocation>> {
    if (!this.index) {
      const index = new Map<string, HostAllocation>();
      for (const i of this.instances.list()) {
        let a = index.get(i.spec.host);
        if (!a) {
          a = { allocated: { cpuMillis: 0, memoryBytes: 0 }, instances: 0, location: i.spec.location };
          index.set(i.spec.host, a);
        }
        a.instances++;
        a.allocated.cpuMillis += i.spec.resources?.cpuMillis ?? 0;
        a.allocated.memoryBytes += i.spec.resources?.memoryBytes ?? 0;
      }
      this.index = index;
    }
    return this.index;
  }
}
