/**
 * How the agent's Node process is started, for a small resident footprint on every edge host: a 1 MiB young
 * generation, no V8 worker threads, and two malloc arenas (the agent is I/O-bound and mostly idle). The
 * `edge-agent` executable's shebang line (agent/main.ts) carries the same settings; launchers that run
 * `node dist/agent/main.js` themselves (deploy/stack, systemd units) use these constants.
 */

/** Node/V8 command-line flags, before the script path. */
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--v8-pool-size=0'];

/** Environment of the agent process. */
export const AGENT_NODE_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };
