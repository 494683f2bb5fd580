/** Agent-side fixtures: a reconciler over one driver running one request, stopped when the test ends. */
import type { Driver, InstanceRequest } from '../../agent/drivers/driver.js';
import { Reconciler } from '../../agent/reconciler.js';
import type { Runtime } from '../../shared/api/index.js';
import type { Logger } from '../../shared/log.js';
import { cleanup } from './index.js';
import { testIntent } from './objects.js';

/**
 * A started {@link Reconciler} on host `host` whose only intent runs `req` as instance `<workload>-0` with
 * `driver` as the `runtime` driver; stopped by the test's cleanup.
 */
export function reconcilerFor(opts: {
  host: string;
  runtime: Runtime;
  driver: Driver;
  req: InstanceRequest;
  log: Logger;
}): Reconciler {
  const { req } = opts;
  const intent = testIntent({
    namespace: req.namespace,
    workload: req.workload,
    hosts: [opts.host],
    templateHash: req.templateHash,
    template: req.template,
    limits: req.limits,
    instances: [{ name: req.name, host: opts.host, ordinal: 0, labels: {} }],
  });
  const r = new Reconciler({
    host: opts.host,
    drivers: { [opts.runtime]: opts.driver },
    intents: () => [intent],
    synced: () => true,
    resyncMs: 300,
    log: opts.log,
  });
  r.start();
  cleanup(() => r.stop());
  return r;
}
