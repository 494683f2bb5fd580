/**
 * The API server's write ceiling: how many plain objects of an Instance's size kube-apiserver (and its etcd)
 * accept per second from one client at its best parallelism, measured in the same run as the fleet so that the
 * Instance throughput can be read as a share of it. The objects are ConfigMaps whose data is as large as one
 * Instance object as the API server returns it; each parallelism level creates `perLevel` of them, and the best
 * rate is the ceiling.
 */
import type { KubeClient } from '../../coordinator/kube/client.js';

/** The outcome of {@link measureWriteCeiling}. */
export interface WriteCeiling {
  /** The best rate over the levels (objects created per second). */
  perSecond: number;
  /** The parallelism that gave it. */
  parallelism: number;
  /** Rate per parallelism level. */
  byParallelism: Record<number, number>;
  /** Bytes of each object's payload. */
  objectBytes: number;
}

/** Creates ConfigMaps of `objectBytes` in `namespace` at each parallelism in `levels`; reports the best rate. */
export async function measureWriteCeiling(
  client: KubeClient,
  opts: { namespace: string; objectBytes: number; perLevel: number; levels?: readonly number[] },
): Promise<WriteCeiling> {
  const { namespace, objectBytes, perLevel } = opts;
  await client.core.createNamespace({ body: { metadata: { name: namespace } } }).catch(() => undefined);
  const payload = 'x'.repeat(Math.max(1, objectBytes - 200));
  const byParallelism: Record<number, number> = {};
  let best = { perSecond: 0, parallelism: 1 };
  let serial = 0;
  for (const parallelism of opts.levels ?? [1, 4, 16, 64]) {
    let next = 0;
    const t0 = performance.now();
    const worker = async () => {
      while (next < perLevel) {
        next++;
        const name = `ceiling-${serial++}`;
        await client.core.createNamespacedConfigMap({
          namespace,
          body: { metadata: { name, labels: { bench: 'ceiling' } }, data: { payload } },
        });
      }
    };
    await Promise.all(Array.from({ length: parallelism }, worker));
    const rate = perLevel / ((performance.now() - t0) / 1000);
    byParallelism[parallelism] = Math.round(rate);
    if (rate > best.perSecond) best = { perSecond: rate, parallelism };
  }
  return { perSecond: Math.round(best.perSecond), parallelism: best.parallelism, byParallelism, objectBytes };
}
