/**
 * The modules dockerode would load that the agent never uses, and the empty stand-ins they get (docker.ts, and
 * deploy/package/build.ts for the bundle). dockerode eagerly loads an SSH client (for `ssh://` daemons) and gRPC
 * with protobuf (for BuildKit sessions); the agent only talks to the local socket and never builds, and those two
 * cost ~17 MB of resident memory on every edge host. Anything that would use them fails loudly rather than
 * silently.
 */

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

/** One stubbed module. */
export interface DockerStub {
  /** Package that requires it. */
  from: string;
  /** Module name as required. */
  name: string;
  /** What it exports instead. */
  exports: unknown;
}

export const DOCKER_STUBS: readonly DockerStub[] = [
  {
    from: 'docker-modem',
    name: 'ssh2',
    exports: {
      Client: class {
        constructor() {
          throw new Error('ssh:// Docker hosts are not supported by edge-agent');
        }
      },
    },
  },
  { from: 'dockerode', name: '@grpc/grpc-js', exports: unavailable('gRPC (BuildKit sessions)') },
  { from: 'dockerode', name: '@grpc/proto-loader', exports: unavailable('gRPC (BuildKit sessions)') },
  { from: 'dockerode', name: 'uuid', exports: { v4: unavailable('BuildKit sessions') } },
  // Build contexts (`docker.buildImage` of a directory): tarred with tar-fs, filtered by .dockerignore.
  { from: 'dockerode', name: 'tar-fs', exports: unavailable('tar-fs (image builds)') },
  { from: 'dockerode', name: '@balena/dockerignore', exports: unavailable('.dockerignore (image builds)') },
];

/** The stand-in exports of `name` (the bundle's stub modules read them here). */
export function stubExports(name: string): unknown {
  return DOCKER_STUBS.find((s) => s.name === name)?.exports;
}
