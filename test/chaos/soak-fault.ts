/**
 * The shape of a soak fault (test/chaos/README.md § Writing a scenario), apart from the fault library so that
 * scenario modules can define soak faults without importing faults.ts (which lists them all in SOAK_FAULTS).
 */
import type { Rng } from './random.js';
import type { Topology } from './topology.js';

/** Undoes a fault; idempotent. */
export type Heal = () => Promise<void>;

/** A fault in force, as the soak and the oracle see it. */
export interface InjectedFault {
  /** What exactly was done (`SIGKILL agent chaos-…-a-0`), for the log. */
  detail: string;
  /**
   * Hosts whose instances the fault may legitimately disturb: while it lasts and for the oracle's grace after
   * the heal, their slots may be lost (replaced elsewhere), duplicated and restarted. Instances elsewhere must
   * not be restarted at all.
   */
  touchedHosts: string[];
  /** Undoes it. */
  heal: Heal;
  /** Optional checks once healed (and the system settled): the scenario's own verdict and figures. */
  verify?(): Promise<{ passed: boolean; figures?: Record<string, string | number | boolean> }>;
}

/** A named fault the soak injects at random, every one to two minutes. */
export interface SoakFault {
  /** Scenario name, `area/what`, as in test/chaos/README.md and docs/reliability.md. */
  name: string;
  /** How long the fault is held before it is healed: [min, max] ms. */
  holdMs: [number, number];
  /** Whether it can run in this topology (default: always). */
  applies?(t: Topology): boolean;
  /** Injects it (choosing its target with `rng`). */
  inject(t: Topology, rng: Rng): Promise<InjectedFault>;
}
