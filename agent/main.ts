#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=1 --v8-pool-size=0
/** edge-agent: runs the instances the coordinator places on this host. This file only wires parts together. */
// First: memory settings must apply before the rest loads.
import './lean.js';
import { hostname } from 'node:os';
import { Command } from 'commander';
import { runDaemon } from '../shared/daemon.js';
import { AGENT_CONFIG_FILE } from '../shared/host-paths.js';
import { createLogger } from '../shared/log.js';
import { AGENT_VERSION, Agent } from './agent.js';
import { loadAgentConfig } from './config.js';
import { AGENT_PATHS, type JoinOptions, join } from './enroll.js';
import { checkHealth, healthAddress } from './health-check.js';

type JoinFlags = Omit<JoinOptions, 'nats' | 'host' | 'log' | 'ca'> & {
  nats: string;
  host?: string;
  natsCa?: string;
};

const program = new Command('edge-agent')
  .description(
    'Edgeplane agent: runs the instances placed on this host (gVisor containers, QEMU VMs) and reports them.',
  )
  .version(AGENT_VERSION);

function withAgentOptions(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'YAML or JSON configuration file')
    .option(
      '--host <name>',
      'host name, unique in the installation (default: the system host name) [EDGE_HOST]',
    )
    .option('--location <name>', 'location of this host, e.g. us-central1-a [EDGE_LOCATION]')
    .option('--provider <name>', 'provider label, e.g. gcp [EDGE_PROVIDER]')
    .option('--region <name>', 'region label, e.g. us-central1 [EDGE_REGION]')
    .option('--zone <name>', 'zone label, e.g. us-central1-a [EDGE_ZONE]')
    .option('--city-code <code>', 'city code label, e.g. DFW [EDGE_CITY_CODE]')
    .option('--labels <k=v,...>', 'extra host labels [EDGE_LABELS]')
    .option(
      '--nats <urls>',
      'NATS server URLs, comma-separated (default nats://127.0.0.1:4222) [EDGE_NATS_URL]',
    )
    .option('--nats-creds <file>', 'NATS credentials file [EDGE_NATS_CREDS]')
    .option('--nats-ca <file>', 'CA (PEM) of the NATS server certificate; turns TLS on [EDGE_NATS_CA]')
    .option('--nats-cert <file>', 'client certificate (PEM) for mutual TLS [EDGE_NATS_CERT]')
    .option('--nats-key <file>', 'key of the client certificate [EDGE_NATS_KEY]')
    .option('--subject-prefix <prefix>', 'NATS subject prefix (default edge) [EDGE_SUBJECT_PREFIX]')
    .option('--state-dir <dir>', 'state directory (default /var/lib/edgeplane/agent/<host>) [EDGE_STATE_DIR]')
    .option('--heartbeat-ms <ms>', 'heartbeat interval (default 5000) [EDGE_HEARTBEAT_MS]')
    .option(
      '--publish-address <ip>',
      'host address instance ports are published on (default 0.0.0.0) [EDGE_PUBLISH_ADDRESS]',
    )
    .option(
      '--cpu <quantity>',
      'advertise this much allocatable CPU instead of the measured amount [EDGE_CPU]',
    )
    .option('--image-catalog <file>', 'VM image catalog (YAML/JSON) [EDGE_IMAGE_CATALOG]')
    .option(
      '--image-cache-dir <dir>',
      'cache of verified VM image artifacts (default <state-dir>/images) [EDGE_IMAGE_CACHE_DIR]',
    )
    .option('--vm-accel <kvm|tcg>', 'VM accelerator instead of probing KVM [EDGE_VM_ACCEL]')
    .option(
      '--vm-probe-kernel <file>',
      'kernel the KVM probe boots (default: a cached catalog kernel, else the host one) [EDGE_VM_PROBE_KERNEL]',
    )
    .option(
      '--overlay-address <ip>',
      "address other hosts reach this host's VXLAN endpoint on; without it the host carries no Network attachments [EDGE_OVERLAY_ADDRESS]",
    )
    .option(
      '--network-namespace <name>',
      "network namespace (ip netns) the host's Network devices live in, for several stand-in hosts on one machine (default: the machine's own) [EDGE_NETWORK_NAMESPACE]",
    )
    .option(
      '--memory <quantity>',
      'advertise this much allocatable memory instead of the measured amount [EDGE_MEMORY]',
    )
    .option(
      '--docker-socket <path>',
      'dockerd socket the gvisor runtime uses (default /var/run/docker.sock, or DOCKER_HOST) [EDGE_DOCKER_SOCKET]',
    )
    .option(
      '--metrics-address <host:port>',
      'serve /metrics, /healthz, /readyz here, e.g. 127.0.0.1:9465 (default: off) [EDGE_METRICS_ADDRESS]',
    );
}

withAgentOptions(program.command('run', { isDefault: true }).description('run the agent (default)')).action(
  (flags: Record<string, unknown>) =>
    runDaemon({
      log: createLogger({ name: 'edge-agent' }),
      load: () => loadAgentConfig(flags),
      build: (config, log) => new Agent(config, log),
      stopping: 'stopping agent; instances keep running',
    }),
);

withAgentOptions(
  program.command('drain').description('stop and remove every instance this agent started, then exit'),
).action(async (flags: Record<string, unknown>) => {
  const log = createLogger({ name: 'edge-agent' });
  await new Agent(loadAgentConfig({ location: 'drain', ...flags }), log).drain();
});

program
  .command('health')
  .description('ask the running agent: 0 healthy (or ready), 1 not, 2 no metricsAddress to ask; prints why')
  .option('--ready', 'ask /readyz (NATS connected, intents synced) instead of /healthz')
  .option('--config <file>', 'configuration file whose metricsAddress to ask', AGENT_CONFIG_FILE)
  .option('--address <host:port>', 'ask here instead [EDGE_METRICS_ADDRESS]')
  .action(async (flags: { ready?: boolean; config?: string; address?: string }) => {
    let address: string | undefined;
    try {
      address = healthAddress({ ...flags, env: process.env });
    } catch (err) {
      console.log(`cannot read ${flags.config}: ${(err as Error).message}`);
      process.exit(2);
    }
    const r = await checkHealth(address, { ready: flags.ready === true });
    console.log(r.reason);
    process.exit(r.code);
  });

program
  .command('join')
  .description('enroll this host with a join token (edgectl hosts token create), then start the service')
  .requiredOption('--nats <urls>', 'NATS server URLs, comma-separated')
  .requiredOption('--token <token>', 'join token')
  .option('--host <name>', 'host name (default: the system host name)')
  .option('--location <name>', 'location this host expects (the token decides; a mismatch is refused)')
  .option('--config-dir <dir>', 'where agent.yaml and nats.creds go', AGENT_PATHS.configDir)
  .option('--state-dir <dir>', 'state directory written into agent.yaml')
  .option(
    '--nats-ca <file>',
    'CA (PEM) of the NATS server certificate; written into agent.yaml [EDGE_NATS_CA]',
  )
  .option('--no-start', 'do not enable and start the edge-agent service')
  .action(async (flags: JoinFlags) => {
    const log = createLogger({ name: 'edge-agent' });
    try {
      const { natsCa, ...rest } = flags;
      await join({
        ...rest,
        ...(natsCa ? { ca: natsCa } : {}),
        nats: flags.nats.split(','),
        host: flags.host ?? hostname().toLowerCase(),
        log,
      });
    } catch (err) {
      log.fatal((err as Error).message);
      process.exit(1);
    }
  });

await program.parseAsync(process.argv);
