/**
 * Imported first by `main.ts`: V8's lite mode (no optimizing compiler, lazy feedback allocation) for the agent.
 * The agent is I/O-bound — it waits on NATS, dockerd and qemu — so optimized code buys nothing, while lite mode
 * keeps ~13 MB of resident memory off every edge host. `EDGE_AGENT_FULL_JIT=1` turns it off.
 */
import { createRequire } from 'node:module';
import v8 from 'node:v8';

if (!process.env.EDGE_AGENT_FULL_JIT) v8.setFlagsFromString('--lite-mode');

/**
 * One NATS client core. `@nats-io/services` pins a prerelease of `@nats-io/nats-core` (3.0.0-50), so npm installs
 * it a second copy beside the 3.4.0 that the connection (`@nats-io/transport-node`) uses: ~1 MB of resident memory
 * for the seven helpers the services code takes from it (`Empty`, `headers`, `nuid`, `nanos`, `deferred`,
 * `parseSemVer`, `QueuedIteratorImpl`), which 3.4.0 has with the same behaviour. The services code gets the
 * connection's copy instead, as a deduplicating install would give it.
 */
// The packaged bundle (deploy/package/build.ts) resolves the services code to that copy at build time.
const bundled = process.env.EDGEPLANE_BUNDLED === '1';
const require = createRequire(import.meta.url);
const core = bundled ? '' : require.resolve('@nats-io/nats-core/internal');
const nested = bundled
  ? core
  : createRequire(require.resolve('@nats-io/services')).resolve('@nats-io/nats-core/internal');
if (nested !== core && !require.cache[nested]) {
  require.cache[nested] = {
    id: nested,
    filename: nested,
    loaded: true,
    exports: require(core),
    children: [],
    paths: [],
  } as unknown as NodeJS.Module;
}
