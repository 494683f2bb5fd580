/**
 * dockerode, loaded lean. dockerode eagerly loads an SSH client (for `ssh://` daemons) and gRPC with protobuf
 * (for BuildKit sessions); the agent only talks to the local socket and never builds, and those two cost ~17 MB
 * of resident memory on every edge host. They are replaced by empty modules before dockerode loads; anything that
 * would use them fails loudly rather than silently.
 */
import { createRequire } from 'node:module';
import type DockerType from 'dockerode';

const require = createRequire(import.meta.url);

function stub(from: string, name: string, exports: unknown): void {
  const file = createRequire(require.resolve(from)).resolve(name);
  if (require.cache[file]) return;
  require.cache[file] = {
    id: file,
    filename: file,
    loaded: true,
    exports,
    children: [],
    paths: [],
  } as unknown as NodeJS.Module;
}

const unavailable = (what: string) =>
  new Proxy(
    {},
    {
      get: () => {
        throw new Error(
          `${what} is not available in edge-agent (the agent talks to the local Docker socket only)`,
        );
      },
    },
  );

stub('docker-modem', 'ssh2', {
  Client: class {
    constructor() {
      throw new Error('ssh:// Docker hosts are not supported by edge-agent');
    }
  },
});
stub('dockerode', '@grpc/grpc-js', unavailable('gRPC (BuildKit sessions)'));
stub('dockerode', '@grpc/proto-loader', unavailable('gRPC (BuildKit sessions)'));
stub('dockerode', 'uuid', { v4: unavailable('BuildKit sessions') });
// Build contexts (`docker.buildImage` of a directory): tarred with tar-fs, filtered by .dockerignore.
stub('dockerode', 'tar-fs', unavailable('tar-fs (image builds)'));
stub('dockerode', '@balena/dockerignore', unavailable('.dockerignore (image builds)'));

/** The dockerode class. */
export const Docker = require('dockerode') as typeof DockerType;
