/**
 * Which hosts are Ready, Disconnected or Lost, decided so that the coordinator's own faults cannot declare the
 * fleet Lost (issue 14; Nomad #3840). Three rules, after Nomad and Kubernetes:
 *
 * 1. Silence is measured on a monotonic clock (`performance.now()`), from the later of the host's last report
 *    and the start of the current grace (`graceFrom`), so a wall-clock step changes nothing.
 * 2. The grace restarts whenever the coordinator could not have heard its hosts: its NATS connection came back,
 *    or its own check loop stalled (SIGSTOP, a VM pause, a starved event loop) — Nomad resets every heartbeat
 *    timer after a leader change for the same reason. While its connection is down no verdict is made at all
 *    (the caller skips the decision).
 * 3. Only a report makes a host better (the registry sets Ready when one arrives): a decision never moves a host
 *    from Lost or Disconnected towards Ready, since silence counted afresh after a grace restart says nothing
 *    of a host that was already silent (it would call a Lost host Ready, record HostLost twice, and place on it).
 * 4. Brake (the node lifecycle controller's unhealthy-zone threshold): when more than `maxLostShare` of the hosts
 *    not already Lost are silent past their TTL, and at least `minBrakeHosts` of them, no host is newly declared
 *    Lost: they stay Disconnected (instances Unknown, nothing replaced) until they report or the share drops.
 *
 * 5. Reports first (the registry's part): before any host is made worse, every report NATS has already sent the
 *    coordinator is read (one round trip to the server), then the decision is made again for the same instant. A
 *    busy event loop runs its timers before it reads its socket, so without this a host whose reports were queued
 *    unread was declared Lost (10,000 hosts going Lost en masse while Workloads were created). `worsened` says
 *    which hosts a decision would make worse.
 *
 * Invariants (property-tested): a host is Lost only when silent longer than `lostAfterMs` (and its TTL), or was
 * Lost already; a Ready host silent no longer than its TTL stays Ready; no host gets better; when the brake engages
 * no host newly becomes Lost; when it does not, the decision is the worse of the silence rule and the host's state.
 */

/** Ready, Disconnected (missed its TTL) or Lost (gone longer than lostAfter). */
export type HostState = 'Ready' | 'Disconnected' | 'Lost';

/** One host as the decision sees it. */
export interface HostSilence {
  /** Host name. */
  host: string;
  /** Its current state. */
  state: HostState;
  /** Milliseconds of silence counted (see {@link silenceMs}). */
  silentMs: number;
  /** Silence after which it is Disconnected (its TTL plus grace). */
  disconnectAfterMs: number;
}

/** The rules of {@link decideHostStates}. */
export interface LivenessRules {
  /** Silence after which a host is Lost and its instances replaced. */
  lostAfterMs: number;
  /** Share (0–1) of the hosts not already Lost that may be silent past their TTL before losses are held. */
  maxLostShare: number;
  /** The brake needs at least this many silent hosts (a one-host fleet can still lose its host). */
  minBrakeHosts: number;
}

/** Defaults: the node lifecycle controller's 55 % unhealthy-zone threshold; two hosts at least. */
export const DEFAULT_LIVENESS: Pick<LivenessRules, 'maxLostShare' | 'minBrakeHosts'> = {
  maxLostShare: 0.55,
  minBrakeHosts: 2,
};

/** The outcome of one decision. */
export interface LivenessDecision {
  /** The state of every host. */
  states: Map<string, HostState>;
  /** Hosts the silence rule would declare Lost now that the brake holds at Disconnected. */
  held: string[];
}

/** Silence counted for a host: from the later of its last report and the start of the current grace. */
export function silenceMs(heardAt: number, graceFrom: number, now: number): number {
  return now - Math.max(heardAt, graceFrom);
}

/** The state the silence rule alone gives. */
export function stateForSilence(silentMs: number, disconnectAfterMs: number, lostAfterMs: number): HostState {
  if (silentMs > Math.max(lostAfterMs, disconnectAfterMs)) return 'Lost';
  return silentMs > disconnectAfterMs ? 'Disconnected' : 'Ready';
}

/** How bad a state is: a decision never lowers it (rule 3). */
const SEVERITY: Record<HostState, number> = { Ready: 0, Disconnected: 1, Lost: 2 };

/** Every host's next state under the silence rule and the brake (see the module comment). */
export function decideHostStates(hosts: readonly HostSilence[], rules: LivenessRules): LivenessDecision {
  const states = new Map<string, HostState>();
  const newlyLost: string[] = [];
  let pool = 0;
  let silent = 0;
  for (const h of hosts) {
    const bySilence = stateForSilence(h.silentMs, h.disconnectAfterMs, rules.lostAfterMs);
    const next = SEVERITY[bySilence] >= SEVERITY[h.state] ? bySilence : h.state;
    states.set(h.host, next);
    if (h.state === 'Lost') continue;
    pool++;
    if (next !== 'Ready') silent++;
    if (next === 'Lost') newlyLost.push(h.host);
  }
  const brake = newlyLost.length > 0 && silent >= rules.minBrakeHosts && silent / pool > rules.maxLostShare;
  if (!brake) return { states, held: [] };
  for (const host of newlyLost) states.set(host, 'Disconnected');
  return { states, held: newlyLost };
}

/** The hosts a decision makes worse than they are (those a verdict must first read every queued report for). */
export function worsened(hosts: readonly HostSilence[], decision: LivenessDecision): string[] {
  const out: string[] = [];
  for (const h of hosts) {
    const next = decision.states.get(h.host) ?? h.state;
    if (SEVERITY[next] > SEVERITY[h.state]) out.push(h.host);
  }
  return out;
}

/**
 * Whether the check loop stalled: the gap since the previous check is longer than expected by more than
 * `toleranceMs` (the coordinator itself was stopped or starved, so silence in that gap says nothing of hosts).
 */
export function loopStalled(
  previousCheck: number | undefined,
  now: number,
  checkMs: number,
  toleranceMs: number,
): boolean {
  return previousCheck !== undefined && now - previousCheck > checkMs + toleranceMs;
}
