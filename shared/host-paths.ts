/**
 * Where the agent lives on a host installed from the Debian package (deploy/package/): one place for the paths
 * the package, its systemd unit, its maintainer scripts and `edge-agent join` must agree on. A dev stack or a
 * test passes its own paths by flag and never reads these.
 */

/** The agent's configuration file (a dpkg conffile): every `edge-agent` flag has a key here. */
export const AGENT_CONFIG_FILE = '/etc/edgeplane/agent.yaml';

/** Directory of the agent's configuration and NATS credentials (removed on `apt-get purge`). */
export const AGENT_CONFIG_DIR = '/etc/edgeplane';

/** The host's NATS credentials (`.creds`: user JWT + seed, or a bare nkey seed), mode 0600, written by join. */
export const AGENT_CREDS_FILE = '/etc/edgeplane/nats.creds';

/** Optional environment file of the unit (EDGE_* variables, LOG_LEVEL, …), as Debian services have. */
export const AGENT_DEFAULTS_FILE = '/etc/default/edge-agent';

/** Root of the agent's state (intents copy, seal key, VMs, image cache); removed on `apt-get purge`. */
export const AGENT_STATE_ROOT = '/var/lib/edgeplane';

/** The agent's default state directory for a host name (config key `stateDir` overrides it). */
export function agentStateDir(host: string): string {
  return `${AGENT_STATE_ROOT}/agent/${host}`;
}

/** The systemd unit the package installs and `edge-agent join` enables and starts. */
export const AGENT_UNIT = 'edge-agent.service';
/** The liveness check of {@link AGENT_UNIT}: a timer it pulls in and the oneshot that runs `edge-agent health`. */
export const AGENT_LIVENESS_UNITS = ['edge-agent-liveness.service', 'edge-agent-liveness.timer'] as const;

/** Where the package puts its runtime (Node binary, bundles). */
export const PACKAGE_LIB_DIR = '/usr/lib/edgeplane';
