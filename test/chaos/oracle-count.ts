/**
 * The oracle's verdict, pure: given what was sampled every second (intents, what runs on each host, leaked
 * sandboxes and VMs) and when faults were in force, count the four things issue 14 bounds.
 *
 * Algorithm: one pass over the samples in time order, keeping per slot (an instance name, `<namespace>/<name>`)
 * the time its intended assignment (host, template hash, Workload uid) last changed, and per running copy
 * (slot on a host) the ids it runs with and since when it is not intended there.
 * - **lost replica-seconds**: a sample in which a slot is intended, its assignment is older than `startGraceMs`
 *   (time to start it), and no host runs it. Inside a fault window (from injection to heal + `healGraceMs`) the
 *   seconds are counted apart (`lostInFaultSeconds`): only those outside are a defect.
 * - **duplicates**: a sample in which one slot runs on two or more hosts. Allowed (`duplicateSecondsAllowed`)
 *   while a fault touching one of those hosts is in force or healed less than `duplicateGraceMs` ago; otherwise a
 *   defect (`duplicateSeconds`).
 * - **orphans**: a container, sandbox or VM that no intent owns (no intent places its slot on its host; for a
 *   leaked sandbox or qemu: no record at all) for longer than `orphanGraceMs` without a break, outside fault
 *   windows touching its host. Counted once per object id.
 * - **needless restarts**: a running copy whose ids changed between two samples (or that vanished and came back)
 *   while it runs the same template as before and its intended assignment on that host did not change, on a host
 *   no fault touched at the time. Counted once per change.
 * Samples whose intents or runtime state could not be read (`undefined`) count nothing and break no streak
 * except that they end a "still running" observation.
 *
 * Invariant: counts only grow with more samples in the same windows, and a run with every slot running exactly
 * once on its intended host, with fixed ids, counts zero everywhere.
 */

/** One intended instance, from the intents bucket. */
export interface IntendedSlot {
  /** `<namespace>/<instance name>`. */
  slot: string;
  /** Host the intent places it on. */
  host: string;
  /** Template hash it must run (the instance's own, else its intent's). */
  templateHash: string;
  /** UID of the Workload (a re-created Workload of the same name is another assignment). */
  workloadUid: string;
}

/** One copy of an instance running on a host (its containers, or its VM). */
export interface RunningCopy {
  /** `<namespace>/<instance name>`. */
  slot: string;
  /** Host it runs on. */
  host: string;
  /** Runtime ids (container ids sorted and joined, or the qemu pid): a change is a restart. */
  ids: string;
  /** Whether anything of it runs (at least one container running, or the qemu process alive). */
  running: boolean;
  /** Template hash it runs (its containers' label), when known: a copy that changes template was asked to. */
  templateHash?: string;
}

/** An object that exists but belongs to no copy the agents know (a leaked runsc sandbox, a qemu no record owns). */
export interface LeakedObject {
  /** What it is and its id, e.g. `sandbox:<container id>`, `qemu:<pid>`. */
  id: string;
  /** Host it belongs to, when known. */
  host?: string;
}

/** What the oracle saw at one moment. */
export interface OracleSample {
  /** Time of the sample (ms since the epoch). */
  at: number;
  /** Every intended instance; undefined when the intents could not be read. */
  intended: IntendedSlot[] | undefined;
  /** Every copy found on the hosts; undefined when a runtime could not be read. */
  copies: RunningCopy[] | undefined;
  /** Objects nothing owns (counted as orphans once older than the grace). */
  leaked: LeakedObject[];
}

/** A fault as the oracle sees it. */
export interface FaultWindow {
  /** Scenario name. */
  name: string;
  /** When it was injected (ms). */
  start: number;
  /** When it was healed (ms); undefined while in force. */
  end: number | undefined;
  /** Hosts whose instances it may disturb (lose, duplicate, restart); empty for control-plane faults. */
  touchedHosts: string[];
}

/** The bounds' parameters. */
export interface OracleOptions {
  /** Time a slot gets to run after its assignment changed (placement, rollout, reschedule). */
  startGraceMs: number;
  /** After a fault heals, lost seconds still count as the fault's for this long (time to converge). */
  healGraceMs: number;
  /** After a fault touching a host heals, a duplicate with that host is allowed for this long (one reconcile). */
  duplicateGraceMs: number;
  /** How long an unowned object may exist before it is an orphan (deletion and clean-up take a reconcile). */
  orphanGraceMs: number;
}

/** The counts. */
export interface OracleCounts {
  /** Samples counted. */
  samples: number;
  /** Slot-seconds not running outside fault windows (bound: 0). */
  lostReplicaSeconds: number;
  /** Slot-seconds not running inside fault windows (reported, not bounded). */
  lostInFaultSeconds: number;
  /** Slot-seconds running on two or more hosts outside the allowed window (bound: 0). */
  duplicateSeconds: number;
  /** Slot-seconds running twice inside the allowed window. */
  duplicateSecondsAllowed: number;
  /** Distinct orphaned objects (bound: 0). */
  orphans: number;
  /** Distinct restarts of copies nothing asked to restart, on hosts no fault touched (bound: 0). */
  needlessRestarts: number;
  /** What each defect was, for the report (at most 50 lines). */
  details: string[];
}

/** Counts lost replica-seconds, duplicates, orphans and needless restarts over `samples` (in time order). */
export function countOracle(samples: OracleSample[], faults: FaultWindow[], o: OracleOptions): OracleCounts {
  const counts: OracleCounts = {
    samples: 0,
    lostReplicaSeconds: 0,
    lostInFaultSeconds: 0,
    duplicateSeconds: 0,
    duplicateSecondsAllowed: 0,
    orphans: 0,
    needlessRestarts: 0,
    details: [],
  };
  const detail = (s: string) => {
    if (counts.details.length < 50) counts.details.push(s);
  };
  const inWindow = (at: number, grace: number, host?: string) =>
    faults.some(
      (f) =>
        at >= f.start &&
        (f.end === undefined || at <= f.end + grace) &&
        (host === undefined || f.touchedHosts.includes(host)),
    );
  /** Slot → its assignment key and since when. */
  const assignment = new Map<string, { key: string; since: number }>();
  /** `slot@host` → ids last seen running, the template they ran, and the assignment key then. */
  const lastIds = new Map<string, { ids: string; key: string; templateHash: string | undefined }>();
  /** Object id → first time seen unowned (in an unbroken streak). */
  const unownedSince = new Map<string, number>();
  const orphaned = new Set<string>();
  let prevAt: number | undefined;

  for (const s of samples) {
    if (!s.intended || !s.copies) {
      prevAt = undefined;
      continue;
    }
    counts.samples++;
    // Seconds this sample stands for: the gap to the previous one, at most 1 s after a gap of unreadable samples.
    const weight = prevAt === undefined ? 1 : Math.min(Math.max((s.at - prevAt) / 1000, 0), 5);
    prevAt = s.at;
    const intendedBySlot = new Map<string, IntendedSlot>();
    for (const i of s.intended) intendedBySlot.set(i.slot, i);
    for (const [slot, i] of intendedBySlot) {
      const key = `${i.host}|${i.templateHash}|${i.workloadUid}`;
      const a = assignment.get(slot);
      if (!a || a.key !== key) assignment.set(slot, { key, since: s.at });
    }
    for (const slot of [...assignment.keys()]) if (!intendedBySlot.has(slot)) assignment.delete(slot);
    // A slot no longer intended forgets its copies' ids: when it comes back, it is a new assignment.
    for (const where of [...lastIds.keys()])
      if (!assignment.has(where.slice(0, where.lastIndexOf('@')))) lastIds.delete(where);

    const hostsBySlot = new Map<string, string[]>();
    for (const c of s.copies) {
      if (!c.running) continue;
      hostsBySlot.set(c.slot, [...(hostsBySlot.get(c.slot) ?? []), c.host]);
    }

    // Lost.
    for (const [slot, a] of assignment) {
      if (s.at - a.since < o.startGraceMs || hostsBySlot.has(slot)) continue;
      if (inWindow(s.at, o.healGraceMs)) counts.lostInFaultSeconds += weight;
      else {
        counts.lostReplicaSeconds += weight;
        detail(`lost ${slot} at ${new Date(s.at).toISOString()}`);
      }
    }
    // Duplicates.
    for (const [slot, hosts] of hostsBySlot) {
      const distinct = [...new Set(hosts)];
      if (distinct.length < 2) continue;
      if (distinct.some((h) => inWindow(s.at, o.duplicateGraceMs, h)))
        counts.duplicateSecondsAllowed += weight;
      else {
        counts.duplicateSeconds += weight;
        detail(`duplicate ${slot} on ${distinct.join(',')} at ${new Date(s.at).toISOString()}`);
      }
    }
    // Orphans: copies not intended on their host, and leaked objects.
    const unowned = new Map<string, string | undefined>();
    for (const c of s.copies) {
      const i = intendedBySlot.get(c.slot);
      if (!i || i.host !== c.host) unowned.set(`copy:${c.slot}@${c.host}:${c.ids}`, c.host);
    }
    for (const l of s.leaked) unowned.set(l.id, l.host);
    for (const id of [...unownedSince.keys()]) if (!unowned.has(id)) unownedSince.delete(id);
    for (const [id, host] of unowned) {
      // A host cut off keeps what it ran (autonomy) until it hears again: its grace starts after the fault's.
      const since =
        host !== undefined && inWindow(s.at, o.healGraceMs, host) ? s.at : (unownedSince.get(id) ?? s.at);
      unownedSince.set(id, since);
      if (orphaned.has(id) || s.at - since <= o.orphanGraceMs) continue;
      orphaned.add(id);
      counts.orphans++;
      detail(`orphan ${id} since ${new Date(since).toISOString()}`);
    }
    // Needless restarts.
    for (const c of s.copies) {
      if (!c.running) continue;
      const where = `${c.slot}@${c.host}`;
      const i = intendedBySlot.get(c.slot);
      const a = assignment.get(c.slot);
      // The assignment's generation (key and since): a slot re-added with the same key is a new one.
      const key = i && a && i.host === c.host ? `${a.key}#${a.since}` : '';
      const last = lastIds.get(where);
      lastIds.set(where, { ids: c.ids, key, templateHash: c.templateHash });
      if (!last || last.ids === c.ids || !key || last.key !== key) continue;
      // A rollout replaces a copy in place some seconds after its intent changed: a new template was asked for.
      if (last.templateHash !== c.templateHash) continue;
      if (inWindow(s.at, o.healGraceMs, c.host)) continue;
      counts.needlessRestarts++;
      detail(`needless restart of ${where} at ${new Date(s.at).toISOString()} (${last.ids} → ${c.ids})`);
    }
    // A copy not seen running keeps its last ids: if it comes back with others, that is a restart too.
  }
  counts.lostReplicaSeconds = round(counts.lostReplicaSeconds);
  counts.lostInFaultSeconds = round(counts.lostInFaultSeconds);
  counts.duplicateSeconds = round(counts.duplicateSeconds);
  counts.duplicateSecondsAllowed = round(counts.duplicateSecondsAllowed);
  return counts;
}

const round = (x: number) => Math.round(x * 10) / 10;
