/**
 * dockerode, loaded lean: the modules it would load that the agent never uses (docker-stubs.ts) are replaced by
 * empty ones before it loads. The packaged bundle replaces this module by a plain `require('dockerode')` and gives
 * dockerode the same stand-ins at build time (deploy/package/build.ts).
 */
import { createRequire } from 'node:module';
import type DockerType from 'dockerode';
import { DOCKER_STUBS } from './docker-stubs.js';

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

for (const s of DOCKER_STUBS) stub(s.from, s.name, s.exports);

/** The dockerode class. */
export const Docker = require('dockerode') as typeof DockerType;
