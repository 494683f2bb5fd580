/**
 * What the Instances hold on each host: the sum of their requests and their count, indexed once from the
 * Instance cache and rebuilt only after an Instance changed. The host sync (status of every host on each
 * flush) and placement (every host on each pass) both read it, so neither rescans every Instance per host.
 */
import type { ResourceAmounts } from '../../shared/api/index.js';

/** The Instance fields the index reads. */
export interface AllocatingInstance {
  /** Name and namespace (the key of its contribution). */
  metadata?: { name?: string; namespace?: string };
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

/** What one Instance adds to its host. */
interface Contribution {
  host: string;
  cpuMillis: number;
  memoryBytes: number;
}

/**
 * The allocation per host, kept in step with an Instance source: built by one scan on first use, then changed
 * by each event's difference (an event without an object makes the next read scan again). At 100,000
 * Instances a scan after every change cost every pass O(fleet) while Instances were being created.
 *
 * Invariant: after any events, `all()` equals what a fresh scan of the source gives (property-tested).
 */
export class AllocationIndex {
  private index: Map<string, HostAllocation> | undefined;
  /** Each indexed Instance's contribution, by `namespace/name`. */
  private contributions = new Map<string, Contribution>();

  constructor(
    private readonly instances: {
      list(): readonly AllocatingInstance[];
      onChange(fn: (obj?: AllocatingInstance, event?: 'add' | 'update' | 'delete') => void): void;
    },
  ) {
    instances.onChange((obj, event) => {
      if (!this.index) return;
      if (!obj?.metadata || !event) this.index = undefined;
      else this.apply(obj, event);
    });
  }

  private static keyOf(i: AllocatingInstance): string {
    return `${i.metadata?.namespace ?? ''}/${i.metadata?.name ?? ''}`;
  }

  private apply(i: AllocatingInstance, event: 'add' | 'update' | 'delete'): void {
    const index = this.index!;
    const key = AllocationIndex.keyOf(i);
    const old = this.contributions.get(key);
    if (old) {
      const a = index.get(old.host);
      if (a) {
        a.instances--;
        a.allocated.cpuMillis -= old.cpuMillis;
        a.allocated.memoryBytes -= old.memoryBytes;
        if (a.instances <= 0) index.delete(old.host);
      }
      this.contributions.delete(key);
    }
    if (event !== 'delete') this.add(index, key, i);
  }

  private add(index: Map<string, HostAllocation>, key: string, i: AllocatingInstance): void {
    let a = index.get(i.spec.host);
    if (!a) {
      a = { allocated: { cpuMillis: 0, memoryBytes: 0 }, instances: 0, location: i.spec.location };
      index.set(i.spec.host, a);
    }
    const c = {
      host: i.spec.host,
      cpuMillis: i.spec.resources?.cpuMillis ?? 0,
      memoryBytes: i.spec.resources?.memoryBytes ?? 0,
    };
    a.instances++;
    a.allocated.cpuMillis += c.cpuMillis;
    a.allocated.memoryBytes += c.memoryBytes;
    this.contributions.set(key, c);
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
      this.contributions = new Map();
      for (const i of this.instances.list()) this.add(index, AllocationIndex.keyOf(i), i);
      this.index = index;
    }
    return this.index;
  }
}
