/**
 * Placement benchmark. `npm run bench:placement` prints a table; `-- --json` prints one JSON object
 * `{ "results": [ { "shape", "hosts", "replicas", "seconds", "replicasPerSecond" } ] }`;
 * `-- --shape <name>` (repeatable) runs only some shapes; `-- --quick` runs smaller sizes. The 5,000-host
 * shapes run 3 times (fresh state each time) and report the median, as the machine may be shared; C1M runs once.
 *
 * Shapes mirror kube-scheduler's scheduler_perf on 5,000 hosts (SchedulingBasic, TopologySpreading hard and
 * preferred, NodeAffinity, PodAntiAffinity required, PreferredPodAffinity), and "C1M": 1,000 Workloads × 1,000
 * replicas onto 10,000 hosts in 50 locations. Every Workload is placed with one `schedule()` call, given all
 * hosts and every instance placed so far, as the coordinator does; the measured time includes applying each plan
 * (adding the instances, updating host allocations).
 */

import {
  commitPlan,
  type HostInfo,
  type InstanceInfo,
  schedule,
  type WorkloadInfo,
} from '../coordinator/placement/index.js';
import type { Placement } from '../shared/api/placement.js';

interface Shape {
  name: string;
  hosts: number;
  locations: number;
  /** Instances placed before measuring (scheduler_perf's initPods), as `initWorkloads` × `initReplicas`. */
  initWorkloads: number;
  initReplicas: number;
  workloads: number;
  replicas: number;
  placement?: (w: number) => Placement | undefined;
  labels?: Record<string, string>;
  cpuMillis?: (w: number) => number;
  /** kube-scheduler scheduler_perf threshold (pods/s) for the shape, if any. */
  k8sThreshold?: number;
}

const ZONE = 'topology.kubernetes.io/zone';
const HOSTNAME = 'kubernetes.io/hostname';

function makeHosts(count: number, locations: number): HostInfo[] {
  const providers = ['gcp', 'aws', 'azure'];
  const hosts: HostInfo[] = [];
  for (let i = 0; i < count; i++) {
    const loc = i % locations;
    const region = `region-${Math.floor(loc / 5)}`;
    const zone = `${region}-${String.fromCharCode(97 + (loc % 5))}`;
    const name = `host-${String(i).padStart(5, '0')}`;
    hosts.push({
      name,
      location: zone,
      labels: {
        [ZONE]: zone,
        'topology.kubernetes.io/region': region,
        provider: providers[Math.floor(loc / 5) % providers.length]!,
        [HOSTNAME]: name,
      },
      capacity: { cpuMillis: 32_000, memoryBytes: 128 * 1024 ** 3 },
      allocated: { cpuMillis: 0, memoryBytes: 0 },
      runtimes: ['gvisor', 'vm'],
      ready: true,
    });
  }
  return hosts;
}

function run(shape: Shape): { seconds: number; placed: number; unplaced: number } {
  const hosts = makeHosts(shape.hosts, shape.locations);
  const world = {
    hosts,
    instances: [] as InstanceInfo[],
    hostsByName: new Map(hosts.map((h) => [h.name, h])),
  };
  const place = (w: WorkloadInfo) => {
    const plan = schedule({ workload: w, hosts: world.hosts, instances: world.instances });
    commitPlan(world, w, plan);
    return plan;
  };
  const workload = (name: string, replicas: number, w: number, placement?: Placement): WorkloadInfo => ({
    namespace: 'bench',
    name,
    replicas,
    placement,
    instanceLabels: { ...(shape.labels ?? {}), workload: name },
    resources: { cpuMillis: shape.cpuMillis?.(w) ?? 100, memoryBytes: 128 * 1024 ** 2 },
    runtime: 'gvisor',
  });
  for (let w = 0; w < shape.initWorkloads; w++) {
    place(workload(`init-${w}`, shape.initReplicas, w, shape.placement?.(w)));
  }
  let placed = 0;
  let unplaced = 0;
  const t0 = process.hrtime.bigint();
  for (let w = 0; w < shape.workloads; w++) {
    const plan = place(workload(`w-${w}`, shape.replicas, w, shape.placement?.(w)));
    placed += plan.place.length;
    unplaced += plan.unplaced;
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { seconds, placed, unplaced };
}

function shapes(quick: boolean): Shape[] {
  const h = quick ? 1000 : 5000;
  const base = {
    hosts: h,
    locations: 50,
    initWorkloads: 10,
    initReplicas: 100,
    workloads: 100,
    replicas: 100,
  };
  const zonesOfHalf = Array.from(
    { length: 25 },
    (_, l) => `region-${Math.floor(l / 5)}-${String.fromCharCode(97 + (l % 5))}`,
  );
  return [
    { ...base, name: 'basic', k8sThreshold: 680 },
    {
      ...base,
      name: 'hard-topology-spread',
      k8sThreshold: 460,
      placement: () => ({
        topologySpreadConstraints: [{ maxSkew: 1, topologyKey: ZONE, whenUnsatisfiable: 'DoNotSchedule' }],
      }),
    },
    {
      ...base,
      name: 'preferred-topology-spread',
      k8sThreshold: 340,
      placement: () => ({
        topologySpreadConstraints: [{ maxSkew: 1, topologyKey: ZONE, whenUnsatisfiable: 'ScheduleAnyway' }],
      }),
    },
    {
      ...base,
      name: 'node-affinity',
      k8sThreshold: 220,
      placement: () => ({
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [{ matchExpressions: [{ key: ZONE, operator: 'In', values: zonesOfHalf }] }],
            },
          },
        },
      }),
    },
    {
      // Every instance repels every other on its host: at most one per host.
      ...base,
      name: 'required-pod-anti-affinity',
      k8sThreshold: 60,
      initWorkloads: 5,
      initReplicas: quick ? 20 : 100,
      replicas: quick ? 9 : 45,
      labels: { color: 'green' },
      placement: () => ({
        affinity: {
          podAntiAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [
              { labelSelector: { matchLabels: { color: 'green' } }, topologyKey: HOSTNAME },
            ],
          },
        },
      }),
    },
    {
      ...base,
      name: 'preferred-pod-affinity',
      k8sThreshold: 90,
      labels: { color: 'blue' },
      placement: () => ({
        affinity: {
          podAffinity: {
            preferredDuringSchedulingIgnoredDuringExecution: [
              {
                weight: 1,
                podAffinityTerm: { labelSelector: { matchLabels: { color: 'blue' } }, topologyKey: HOSTNAME },
              },
            ],
          },
        },
      }),
    },
    {
      // 1,000 Workloads × 1,000 replicas onto 10,000 hosts in 50 locations; each spread over zones, a third of
      // them restricted to one provider, requests from 50m to 250m.
      name: 'C1M',
      hosts: quick ? 2000 : 10_000,
      locations: 50,
      initWorkloads: 0,
      initReplicas: 0,
      workloads: quick ? 100 : 1000,
      replicas: 1000,
      cpuMillis: (w) => 50 + (w % 5) * 50,
      placement: (w) => ({
        topologySpreadConstraints: [{ maxSkew: 1, topologyKey: ZONE, whenUnsatisfiable: 'DoNotSchedule' }],
        ...(w % 3 === 0
          ? { providers: [['gcp', 'aws', 'azure'][w % 9 === 0 ? 0 : w % 9 === 3 ? 1 : 2]!] }
          : {}),
      }),
    },
  ];
}

function main(): void {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const quick = args.includes('--quick');
  const only = args.flatMap((a, i) => (a === '--shape' && args[i + 1] ? [args[i + 1]!] : []));
  const results: Array<{
    shape: string;
    hosts: number;
    replicas: number;
    seconds: number;
    replicasPerSecond: number;
  }> = [];
  const rows: string[][] = [];
  for (const shape of shapes(quick)) {
    if (only.length > 0 && !only.includes(shape.name)) continue;
    const runs = shape.name === 'C1M' ? 1 : 3;
    const all = Array.from({ length: runs }, () => run(shape)).sort((a, b) => a.seconds - b.seconds);
    const r = all[Math.floor(all.length / 2)]!;
    const replicas = shape.workloads * shape.replicas;
    const rps = r.placed / r.seconds;
    results.push({
      shape: shape.name,
      hosts: shape.hosts,
      replicas,
      seconds: Number(r.seconds.toFixed(3)),
      replicasPerSecond: Math.round(rps),
    });
    const target = shape.k8sThreshold ? `${shape.k8sThreshold * 100} /s` : '< 60 s';
    const met = shape.k8sThreshold ? rps >= shape.k8sThreshold * 100 : r.seconds < 60;
    rows.push([
      shape.name,
      String(shape.hosts),
      String(replicas),
      String(r.unplaced),
      r.seconds.toFixed(3),
      String(Math.round(rps)),
      target,
      met ? 'yes' : 'NO',
    ]);
    if (!json) process.stderr.write(`${shape.name} done\n`);
  }
  if (json) {
    process.stdout.write(`${JSON.stringify({ results })}\n`);
    return;
  }
  const header = ['shape', 'hosts', 'replicas', 'unplaced', 'seconds', 'replicas/s', 'target', 'met'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

main();
