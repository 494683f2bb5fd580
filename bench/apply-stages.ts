/**
 * The pure half of `npm run bench:apply` (bench/apply.ts): its options, percentiles, and where the time of one
 * apply went, read from the daemons' pino JSON logs.
 *
 * Algorithm. Every run applies a fresh Workload (a unique name), so each log line the daemons write about it
 * (`workload event`, `pass`, `intent written`, `intent received`, `starting instance`, `containers started`,
 * `instance started`, `host report changed instances`, `workload status written`) belongs to exactly one run. The
 * bench stamps the apply (kubectl apply spawned) and the moment `kubectl get -w` printed it READY; between them
 * the log lines give a chain of marks, in the order the system passes them:
 *
 *   apply → coordinator hears of it → its pass starts → intent written → agent receives it → agent starts the
 *   instance → instance started → coordinator has the agent's report → the status pass starts → Workload status
 *   written → kubectl shows READY
 *
 * Invariant: the stages are the differences of consecutive marks, so for every run they add up to its total
 * exactly; a mark that is missing (a daemon logging at info, not debug) leaves the run without stages rather than
 * with invented ones. All times are the machine's wall clock in milliseconds (pino's `time`, `Date.now()`).
 */

/** What `npm run bench:apply -- …` was asked for. */
export interface ApplyOptions {
  /** One-replica applies (`--runs`, default 20). */
  runs: number;
  /** Replicas of the fleet apply (`--fleet`, default 100; 0 skips it). */
  fleet: number;
  /** Fleet applies (`--fleet-runs`, default 3). */
  fleetRuns: number;
  /** Print one JSON object (`--json`). */
  json: boolean;
  /** Use the running dev stack (`npm run dev`, .edge/dev) instead of starting one (`--dev`). */
  dev: boolean;
  /** Copy the daemons' logs into this directory at the end (`--logs DIR`). */
  logs?: string;
}

/** Parses the benchmark's arguments; throws naming the flag on a bad value or an unknown flag. */
export function parseApplyArgs(argv: readonly string[]): ApplyOptions {
  const o: ApplyOptions = { runs: 20, fleet: 100, fleetRuns: 3, json: false, dev: false };
  const count = (flag: string, raw: string | undefined, min: number): number => {
    const n = Number(raw);
    if (raw === undefined || raw === '' || !Number.isInteger(n) || n < min)
      throw new Error(`${flag}: expected an integer ≥ ${min}, got ${raw ?? 'nothing'}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') o.json = true;
    else if (a === '--dev') o.dev = true;
    else if (a === '--runs') o.runs = count(a, argv[++i], 1);
    else if (a === '--fleet') o.fleet = count(a, argv[++i], 0);
    else if (a === '--fleet-runs') o.fleetRuns = count(a, argv[++i], 1);
    else if (a === '--logs') {
      const dir = argv[++i];
      if (!dir || dir.startsWith('--'))
        throw new Error(`--logs: expected a directory, got ${dir ?? 'nothing'}`);
      o.logs = dir;
    } else
      throw new Error(
        `unknown argument ${a} (known: --runs N, --fleet N, --fleet-runs N, --dev, --logs DIR, --json)`,
      );
  }
  return o;
}

/** The nearest-rank percentile (`p` in 0–100) of `xs`; NaN for none. p99 of fewer than 100 values is the max. */
export function percentile(xs: readonly number[], p: number): number {
  if (!xs.length) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** p50, p99 and max of a sample, in whole milliseconds. */
export interface Summary {
  n: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export function summarize(xs: readonly number[]): Summary {
  return {
    n: xs.length,
    p50Ms: Math.round(percentile(xs, 50)),
    p99Ms: Math.round(percentile(xs, 99)),
    maxMs: Math.round(percentile(xs, 100)),
  };
}

/** One pino line: its time (ms since the epoch), its message and its fields. */
export interface LogLine {
  time: number;
  msg: string;
  [field: string]: unknown;
}

/** The JSON lines of a log whose message is one of `messages` (others, and non-JSON lines, are skipped). */
export function parseLog(text: string, messages: ReadonlySet<string>): LogLine[] {
  const out: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    let o: Partial<LogLine>;
    try {
      o = JSON.parse(line) as Partial<LogLine>;
    } catch {
      continue;
    }
    if (typeof o.time === 'number' && typeof o.msg === 'string' && messages.has(o.msg))
      out.push(o as LogLine);
  }
  return out;
}

/** The messages {@link stagesOf} reads. */
export const STAGE_MESSAGES: ReadonlySet<string> = new Set([
  'workload event',
  'pass',
  'intent written',
  'instance created',
  'intent received',
  'starting instance',
  'containers started',
  'instance started',
  'host report changed instances',
  'workload status written',
]);

/** One measured apply, as the bench saw it. */
export interface RunMarks {
  namespace: string;
  workload: string;
  /** Replicas applied. */
  replicas: number;
  /** kubectl apply spawned. */
  applyAt: number;
  /** kubectl apply exited. */
  appliedAt: number;
  /** `kubectl get -w` printed READY = replicas. */
  readyAt: number;
}

/** Logs of one stack: the coordinator's lines, and each agent's by host name. */
export interface StackLogs {
  coordinator: LogLine[];
  agents: Map<string, LogLine[]>;
}

/** Stage names in the order the system passes them (their durations add up to the total). */
export const STAGES = [
  'applyToCoordinator',
  'coordinatorQueue',
  'passToIntent',
  'intentToAgent',
  'agentToStart',
  'start',
  'reportToCoordinator',
  'reportToStatusPass',
  'statusPass',
  'statusToKubectl',
] as const;
export type Stage = (typeof STAGES)[number];

/** Where one apply's time went. */
export interface RunStages {
  totalMs: number;
  /** Consecutive stages (see {@link STAGES}); they add up to totalMs. */
  stages: Record<Stage, number>;
  /** Detail inside the stages. */
  detail: {
    /** kubectl apply's own run time (inside applyToCoordinator). */
    kubectlApplyMs: number;
    /** The coordinator's first pass, start to end. */
    firstPassMs: number;
    /** The NATS write of the intent (inside passToIntent). */
    intentWriteMs: number;
    /** The containers' start calls: runsc creating and booting the sandbox (inside start). */
    sandboxMs: number;
    /** Creating the containers in dockerd (inside start). */
    createMs: number;
    /** How long the status pass waited in the queue after the report (inside reportToStatusPass). */
    statusQueueMs: number;
  };
}

const keyOf = (m: RunMarks) => `${m.namespace}/${m.workload}`;
const first = <T>(xs: T[], f: (x: T) => boolean): T | undefined => xs.find(f);
const num = (v: unknown): number => (typeof v === 'number' ? v : 0);

/**
 * Where one one-replica apply's time went (see the module comment), or a string naming the first mark not found
 * in the logs.
 */
export function stagesOf(m: RunMarks, logs: StackLogs): RunStages | string {
  const c = logs.coordinator;
  const wl = keyOf(m);
  const passKey = (k: unknown) => typeof k === 'string' && k.endsWith(`|${m.namespace}|${m.workload}`);
  const seen = first(c, (l) => l.msg === 'workload event' && l.workload === wl && l.time >= m.applyAt - 5);
  if (!seen) return 'workload event';
  // The Workload controller's passes (other queues, e.g. the autoscaler's, use the same keys).
  const passes = c.filter((l) => l.msg === 'pass' && l.queue === 'workloads' && passKey(l.key));
  const pass1 = first(passes, (l) => l.time >= seen.time);
  if (!pass1) return 'first pass';
  const intentSuffix = `.${m.namespace}.${m.workload}`;
  const intent = first(c, (l) => l.msg === 'intent written' && String(l.key).endsWith(intentSuffix));
  if (!intent) return 'intent written';
  const created = first(c, (l) => l.msg === 'instance created' && String(l.instance).startsWith(`${wl}-`));
  if (!created) return 'instance created';
  const host = String(created.host);
  const instance = String(created.instance);
  const agent = logs.agents.get(host);
  if (!agent) return `log of agent ${host}`;
  const received = first(agent, (l) => l.msg === 'intent received' && l.key === intent.key && l.op === 'PUT');
  if (!received) return 'intent received';
  const starting = first(agent, (l) => l.msg === 'starting instance' && l.instance === instance);
  if (!starting) return 'starting instance';
  const containers = first(agent, (l) => l.msg === 'containers started' && l.instance === instance);
  const started = first(agent, (l) => l.msg === 'instance started' && l.instance === instance);
  if (!started) return 'instance started';
  const reported = first(
    c,
    (l) => l.msg === 'host report changed instances' && l.host === host && l.time >= started.time,
  );
  if (!reported) return 'host report changed instances';
  const status = first(
    c,
    (l) =>
      l.msg === 'workload status written' &&
      l.workload === wl &&
      l.readyReplicas === m.replicas &&
      l.time >= reported.time,
  );
  if (!status) return 'workload status written (ready)';
  const statusPass = first(passes, (l) => l.time >= status.time);
  if (!statusPass) return 'status pass';
  const pass1Start = pass1.time - num(pass1.ms);
  const statusPassStart = Math.max(reported.time, statusPass.time - num(statusPass.ms));
  const marks = [
    m.applyAt,
    seen.time,
    pass1Start,
    intent.time,
    received.time,
    starting.time,
    started.time,
    reported.time,
    statusPassStart,
    status.time,
    m.readyAt,
  ];
  const stages = Object.fromEntries(STAGES.map((s, i) => [s, marks[i + 1]! - marks[i]!])) as Record<
    Stage,
    number
  >;
  return {
    totalMs: m.readyAt - m.applyAt,
    stages,
    detail: {
      kubectlApplyMs: m.appliedAt - m.applyAt,
      firstPassMs: num(pass1.ms),
      intentWriteMs: num(intent.ms),
      sandboxMs: num(containers?.sandboxMs),
      createMs: num(containers?.createMs),
      statusQueueMs: num(statusPass.waitedMs),
    },
  };
}

/** When things happened in one many-replica apply, in ms after the apply (undefined: not in the logs). */
export interface FleetTimeline {
  /** READY = replicas in kubectl get. */
  readyMs: number;
  /** The coordinator heard of the Workload. */
  seenMs?: number;
  /** Its first pass ended (every Instance created, every intent written). */
  firstPassEndMs?: number;
  /** The last Instance created, and the last intent written. */
  lastCreatedMs?: number;
  lastIntentMs?: number;
  /** The first and the last instance started by an agent. */
  firstStartedMs?: number;
  lastStartedMs?: number;
  /** The coordinator wrote the Workload's status with every replica ready. */
  statusWrittenMs?: number;
  /** Instances started per host, and the median start time of one (ms, starting → started). */
  startedPerHost: Record<string, number>;
  startMsP50?: number;
  /** Median time in the containers' start calls (runsc), per instance. */
  sandboxMsP50?: number;
}

/** The timeline of a many-replica apply (see {@link FleetTimeline}). */
export function fleetTimelineOf(m: RunMarks, logs: StackLogs): FleetTimeline {
  const c = logs.coordinator;
  const wl = keyOf(m);
  const rel = (t: number | undefined) => (t === undefined ? undefined : t - m.applyAt);
  const last = (xs: LogLine[]) => (xs.length ? Math.max(...xs.map((l) => l.time)) : undefined);
  const firstT = (xs: LogLine[]) => (xs.length ? Math.min(...xs.map((l) => l.time)) : undefined);
  const seen = first(c, (l) => l.msg === 'workload event' && l.workload === wl && l.time >= m.applyAt - 5);
  const pass1 = seen
    ? first(
        c,
        (l) =>
          l.msg === 'pass' &&
          l.queue === 'workloads' &&
          String(l.key).endsWith(`|${m.namespace}|${m.workload}`) &&
          l.time >= seen.time,
      )
    : undefined;
  const created = c.filter((l) => l.msg === 'instance created' && String(l.instance).startsWith(`${wl}-`));
  const intents = c.filter(
    (l) => l.msg === 'intent written' && String(l.key).endsWith(`.${m.namespace}.${m.workload}`),
  );
  const status = first(
    c,
    (l) => l.msg === 'workload status written' && l.workload === wl && l.readyReplicas === m.replicas,
  );
  const started: LogLine[] = [];
  const startMs: number[] = [];
  const sandboxMs: number[] = [];
  const startedPerHost: Record<string, number> = {};
  for (const [host, lines] of logs.agents) {
    const mine = (l: LogLine) => String(l.instance).startsWith(`${wl}-`);
    const s = lines.filter((l) => l.msg === 'instance started' && mine(l));
    started.push(...s);
    startMs.push(...s.map((l) => num(l.ms)));
    sandboxMs.push(
      ...lines.filter((l) => l.msg === 'containers started' && mine(l)).map((l) => num(l.sandboxMs)),
    );
    if (s.length) startedPerHost[host] = s.length;
  }
  const out: FleetTimeline = { readyMs: m.readyAt - m.applyAt, startedPerHost };
  const set = (k: keyof FleetTimeline, v: number | undefined) => {
    if (v !== undefined) (out as unknown as Record<string, number>)[k] = Math.round(v);
  };
  set('seenMs', rel(seen?.time));
  set('firstPassEndMs', rel(pass1?.time));
  set('lastCreatedMs', rel(last(created)));
  set('lastIntentMs', rel(last(intents)));
  set('firstStartedMs', rel(firstT(started)));
  set('lastStartedMs', rel(last(started)));
  set('statusWrittenMs', rel(status?.time));
  if (startMs.length) set('startMsP50', percentile(startMs, 50));
  if (sandboxMs.length) set('sandboxMsP50', percentile(sandboxMs, 50));
  return out;
}
