/**
 * Vitest wrappers around deploy/stack: start real daemons for a test file (`useX`, started in beforeAll, stopped in
 * afterAll) or for one test (`startXForTest`, stopped when that test finishes), with temp dirs under os.tmpdir().
 * Cleanup runs even when a test fails; a crashed worker still SIGKILLs its attached children on exit.
 *
 * Set EDGE_KEEP_TMP=1 to keep the temp dirs (logs, configs) for inspection.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, onTestFinished } from 'vitest';
import {
  BUSYBOX_IMAGE,
  ensureDocker,
  type KubeApiHandle,
  type KubeApiOptions,
  type NatsClusterHandle,
  type NatsClusterOptions,
  type NatsServerHandle,
  type NatsServerOptions,
  removeContainersByLabel,
  startKubeApi,
  startNatsCluster,
  startNatsServer,
  startTestGuest,
  type TestGuestHandle,
  type TestGuestOptions,
} from '../../deploy/stack/index.js';

/**
 * The one polling helper of the tests (and the stack): calls `check` until it returns a truthy value and returns
 * that; errors count as "not yet"; throws naming `what` (and the last error) after `timeoutMs` (default 30 s).
 */
export { waitFor } from '../../deploy/stack/index.js';

/** Cleanups registered outside a running test; run (last first) after the test file. */
const fileCleanups: (() => unknown)[] = [];
try {
  afterAll(async () => {
    await runFileCleanups();
  });
} catch {
  // Imported by a script outside vitest (the soak, test/chaos/soak.ts): it calls runFileCleanups() itself.
}

/**
 * Runs (last first) the cleanups registered outside a test. Vitest does it after each file; a script that uses
 * the harness outside vitest (the soak) calls it before exiting.
 */
export async function runFileCleanups(): Promise<void> {
  await runAll(fileCleanups.splice(0).reverse());
}

async function runAll(fns: (() => unknown)[]) {
  const errors: unknown[] = [];
  for (const fn of fns) {
    try {
      await fn();
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length) throw errors[0];
}

/**
 * Registers `fn` to run when the current test finishes (inside a test) or after the test file (anywhere else,
 * e.g. in beforeAll). Runs even when the test fails.
 */
export function cleanup(fn: () => unknown): void {
  try {
    onTestFinished(async () => {
      await fn();
    });
  } catch {
    fileCleanups.push(fn);
  }
}

/** A fresh directory under os.tmpdir(), removed by {@link cleanup} (unless EDGE_KEEP_TMP is set). */
export function tempDir(prefix = 'edgeplane-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  cleanup(() => {
    if (!process.env.EDGE_KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Options of the harness starters: the stack options without `dir` (a temp dir is used unless given). */
type WithOptionalDir<T extends { dir: string }> = Omit<T, 'dir'> & { dir?: string };

/** A value that exists once the file's beforeAll ran; calling it earlier throws. */
export type Lazy<T> = () => T;

function lazyFixture<T extends { stop(): Promise<void> }>(name: string, start: () => Promise<T>): Lazy<T> {
  let value: T | undefined;
  beforeAll(async () => {
    value = await start();
  });
  // Stop at the end of the enclosing describe (the file-level cleanup repeats it; stop is idempotent).
  afterAll(async () => {
    await value?.stop();
  });
  return () => {
    if (!value) throw new Error(`${name} is not started (use it inside tests, after beforeAll)`);
    return value;
  };
}

/** Starts a nats-server (JetStream on by default) stopped when the current test (or file) ends. */
export async function startNatsForTest(
  opts: WithOptionalDir<NatsServerOptions> = {},
): Promise<NatsServerHandle> {
  const dir = opts.dir ?? tempDir('edgeplane-nats-');
  const s = await startNatsServer({ ...opts, dir });
  cleanup(() => s.stop());
  return s;
}

/** A nats-server for the whole test file (beforeAll/afterAll). */
export function useNats(opts: WithOptionalDir<NatsServerOptions> = {}): Lazy<NatsServerHandle> {
  return lazyFixture('useNats()', () => startNatsForTest(opts));
}

/** Starts a three-node (by default) JetStream cluster stopped when the current test (or file) ends. */
export async function startNatsClusterForTest(
  opts: WithOptionalDir<NatsClusterOptions> = {},
): Promise<NatsClusterHandle> {
  const dir = opts.dir ?? tempDir('edgeplane-nats-cluster-');
  const c = await startNatsCluster({ ...opts, dir });
  cleanup(() => c.stop());
  return c;
}

/** A NATS cluster for the whole test file (beforeAll/afterAll). */
export function useNatsCluster(opts: WithOptionalDir<NatsClusterOptions> = {}): Lazy<NatsClusterHandle> {
  return lazyFixture('useNatsCluster()', () => startNatsClusterForTest(opts));
}

/** Starts etcd + kube-apiserver (CRDs from `crdDir` applied) stopped when the current test (or file) ends. */
export async function startKubeApiForTest(
  opts: WithOptionalDir<KubeApiOptions> = {},
): Promise<KubeApiHandle> {
  const dir = opts.dir ?? tempDir('edgeplane-kube-');
  const k = await startKubeApi({ ...opts, dir });
  cleanup(() => k.stop());
  return k;
}

/** A Kubernetes API for the whole test file (beforeAll/afterAll). */
export function useKubeApi(opts: WithOptionalDir<KubeApiOptions> = {}): Lazy<KubeApiHandle> {
  return lazyFixture('useKubeApi()', () => startKubeApiForTest(opts));
}

/** Docker for a test file: the label its containers should carry, removed with them after the file. */
export interface DockerFixture {
  /** `edgeplane.test=<random>`: put it on every container the tests create (`--label`). */
  label: string;
  /** `['--label', label]`, to splice into `docker run` arguments. */
  labelArgs: string[];
  /** The base test image. */
  image: string;
  /** Removes this file's containers now (also done after the file). */
  removeContainers(): Promise<string[]>;
  /** No-op (so it fits {@link Lazy} fixtures). */
  stop(): Promise<void>;
}

/** Ensures Docker + runsc in beforeAll; removes every container labelled with the fixture's label afterwards. */
export function useDocker(): Lazy<DockerFixture> {
  return lazyFixture('useDocker()', async () => {
    await ensureDocker();
    const label = `edgeplane.test=${crypto.randomBytes(6).toString('hex')}`;
    const removeContainers = () => removeContainersByLabel(label);
    cleanup(removeContainers);
    return {
      label,
      labelArgs: ['--label', label],
      image: BUSYBOX_IMAGE,
      removeContainers,
      stop: async () => {},
    };
  });
}

/** Boots the QEMU test guest; it is stopped (QMP quit / SIGKILL) when the current test (or file) ends. */
export async function startTestGuestForTest(
  opts: WithOptionalDir<TestGuestOptions> = {},
): Promise<TestGuestHandle> {
  const dir = opts.dir ?? tempDir('edgeplane-guest-');
  const g = await startTestGuest({ ...opts, dir });
  cleanup(() => g.stop());
  return g;
}

/**
 * The app containers' IDs from `docker ps -a --format '{{.ID}} {{.Label "edgeplane.dev/role"}}'` output: every
 * container without a role (the network-namespace holder of an instance with Network attachments has one).
 */
export function appContainerIds(psOutput: string): string[] {
  return psOutput
    .split('\n')
    .map((line) => line.trim().split(' '))
    .filter(([id, role]) => id && !role)
    .map(([id]) => id!);
}
