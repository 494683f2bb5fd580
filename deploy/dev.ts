/**
 * `npm run dev` / `npm run dev:down`: the whole local stack in the background under .edge/dev — NATS,
 * etcd + kube-apiserver with the CRDs, the coordinator and three agents standing for three locations —
 * then applies examples/web-app.yaml and waits until it is Ready.
 *
 * Each agent is a network host of its own: its Network devices live in a namespace `edgedev-h<i>`, and the
 * three are joined by an underlay that exists only inside namespaces the stack creates (a bridge in
 * `edgedev-u`, a veth to each host, 198.18.0.0/24 — deploy/stack/netns.ts). The agents' overlay addresses are
 * their underlay addresses, so Networks span the three locations over VXLAN as they would span real sites.
 * `dev:down` deletes the namespaces with everything in them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pidAlive } from '../shared/os.js';
import { DEV_LOCATIONS, httpUrlOf } from './stack/edgeplane.js';
import { kubectl, removeContainersByLabel, removeNetnsWithPrefix, stopPidFilesIn } from './stack/index.js';
import { startLocalStack } from './stack/local.js';
import { REPO_DIR, sleep } from './stack/proc.js';

const DIR = path.join(REPO_DIR, '.edge/dev');
const KUBECONFIG = path.join(DIR, 'kubeconfig');
const ENV_FILE = path.join(DIR, 'env');
/** Prefix of the namespaces standing for the agents' hosts and their underlay. */
const NETNS_PREFIX = 'edgedev-';
const say = (s: string) => console.log(`[dev] ${s}`);

function running(): boolean {
  if (!fs.existsSync(DIR)) return false;
  const pids = fs
    .readdirSync(DIR, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.pid'));
  return pids.length > 0 && pids.every((f) => pidAlive(Number(fs.readFileSync(path.join(DIR, f), 'utf8'))));
}

async function up(): Promise<void> {
  if (running()) {
    say('the stack is already running (npm run dev:down stops it)');
  } else {
    await down(true);
    fs.mkdirSync(DIR, { recursive: true });
    const { nats, kube, coordinator } = await startLocalStack({
      dir: DIR,
      netnsPrefix: NETNS_PREFIX,
      hostPrefix: 'dev-',
      detached: true,
      // compute.datumapis.com/v1alpha (Datum's API) through the conversion webhook on loopback.
      webhook: true,
      say,
    });
    fs.copyFileSync(kube.kubeconfigPath, KUBECONFIG);
    // The coordinator serves its dashboard and /metrics on a free loopback port, which it logs.
    const http = await httpUrlOf(coordinator);
    fs.writeFileSync(
      ENV_FILE,
      [
        `export KUBECONFIG=${KUBECONFIG}`,
        `export EDGE_NATS_URL=${nats.url}`,
        `export EDGE_DASHBOARD_URL=${http}/`,
        `export EDGE_METRICS_URL=${http}/metrics`,
        '',
      ].join('\n'),
    );
  }
  say('waiting for the three hosts to register');
  for (const deadline = Date.now() + 60_000; ; ) {
    const r = await kubectl(KUBECONFIG, ['get', 'hosts', '-o', 'jsonpath={.items[*].status.state}']);
    if (r.stdout.split(' ').filter((s) => s === 'Ready').length >= DEV_LOCATIONS.length) break;
    if (Date.now() > deadline) throw new Error(`hosts did not register; see ${DIR}/agents/*/`);
    await sleep(500);
  }
  say('kubectl apply -f examples/prerequisites/ (namespaces, Networks, Secrets the examples reference)');
  const prereq = await kubectl(KUBECONFIG, ['apply', '-f', path.join(REPO_DIR, 'examples/prerequisites/')]);
  if (prereq.code !== 0) throw new Error(`kubectl apply failed: ${prereq.stderr}`);
  say('kubectl apply -f examples/web-app.yaml');
  const applied = await kubectl(KUBECONFIG, ['apply', '-f', path.join(REPO_DIR, 'examples/web-app.yaml')]);
  if (applied.code !== 0) throw new Error(`kubectl apply failed: ${applied.stderr}`);
  say('waiting for web-app to be READY 3');
  const deadline = Date.now() + 300_000;
  for (;;) {
    const r = await kubectl(KUBECONFIG, [
      'get',
      'workload',
      'web-app',
      '-o',
      'jsonpath={.status.readyReplicas}',
    ]);
    if (r.stdout.trim() === '3') break;
    if (Date.now() > deadline) {
      throw new Error(
        `web-app not ready after 300 s; see ${DIR}/coordinator/coordinator.log and ${DIR}/agents/*/`,
      );
    }
    await sleep(1000);
  }
  const get = await kubectl(KUBECONFIG, ['get', 'workload', 'web-app']);
  console.log(`\n${get.stdout}`);
  const env = fs.readFileSync(ENV_FILE, 'utf8');
  const url = (name: string) => new RegExp(`^export ${name}=(.*)$`, 'm').exec(env)?.[1] ?? '(unknown)';
  console.log(`Dashboard: ${url('EDGE_DASHBOARD_URL')}\nMetrics:   ${url('EDGE_METRICS_URL')}`);
  console.log(`The stack runs in the background (logs under .edge/dev/). Try:

  source .edge/dev/env            # KUBECONFIG, EDGE_NATS_URL, EDGE_DASHBOARD_URL, EDGE_METRICS_URL
  kubectl get workload web-app
  kubectl get instances -l workload=web-app
  kubectl describe workload web-app
  kubectl scale workload web-app --replicas=5
  kubectl get hosts
  curl -s $EDGE_METRICS_URL | grep ^edgeplane_hosts
  node dist/edgectl/main.js instances
  docker ps --filter label=edgeplane.dev/instance

  npm run dev:down                # stops it all and removes every instance
`);
}

async function down(quiet = false): Promise<void> {
  if (fs.existsSync(KUBECONFIG) && running()) {
    say('deleting every Workload (instances are stopped by their agents)');
    await kubectl(
      KUBECONFIG,
      [
        'delete',
        'workloads.compute.datumapis.com,workloads.compute.miloapis.com,workloads.workload.datum.net',
        '--all',
        '-A',
        '--timeout=60s',
      ],
      {
        timeoutMs: 90_000,
      },
    );
  }
  const stopped = await stopPidFilesIn(path.join(DIR, 'agents'), 10_000);
  for (const d of fs.existsSync(path.join(DIR, 'agents')) ? fs.readdirSync(path.join(DIR, 'agents')) : []) {
    stopped.push(...(await stopPidFilesIn(path.join(DIR, 'agents', d), 10_000)));
  }
  for (const part of ['coordinator', 'kube', 'nats'])
    stopped.push(...(await stopPidFilesIn(path.join(DIR, part), 15_000)));
  const removed: string[] = [];
  for (const l of DEV_LOCATIONS) {
    removed.push(...(await removeContainersByLabel(`edgeplane.dev/host=dev-${l.location}`).catch(() => [])));
  }
  // After the agents: the namespaces take every device in them (bridges, VXLANs, ports, the underlay) along.
  removeNetnsWithPrefix(NETNS_PREFIX);
  fs.rmSync(DIR, { recursive: true, force: true });
  if (!quiet || stopped.length || removed.length) {
    say(`stopped ${stopped.length} process(es), removed ${removed.length} leftover container(s)`);
  }
}

const cmd = process.argv[2];
try {
  if (cmd === 'up') await up();
  else if (cmd === 'down') await down();
  else throw new Error('usage: tsx deploy/dev.ts up|down');
} catch (err) {
  console.error(`[dev] ${(err as Error).message}`);
  process.exit(1);
}
