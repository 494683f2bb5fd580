/**
 * Edgeplane's real local stack, for tests and the dev script: nats-server (single or cluster), etcd +
 * kube-apiserver, Docker with gVisor, busybox-based test images and the QEMU test guest. Everything listens on
 * 127.0.0.1 on random free ports; every handle has an idempotent `stop()`.
 */

export { freePort, pidAlive } from '../../shared/os.js';
export * from './docker.js';
export * from './kube.js';
export * from './nats.js';
export * from './netns.js';
export {
  type DaemonOptions,
  EDGE_CACHE,
  freePorts,
  REPO_DIR,
  stopPidFile,
  stopPidFilesIn,
  waitFor,
} from './proc.js';
export * from './prometheus.js';
export * from './qemu.js';
