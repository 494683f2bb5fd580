/**
 * The process's own metrics (CPU, memory, event loop, GC) for a daemon's /metrics, as prom-client collects them,
 * less the three gauges it names `_total`, which promtool (rightly) rejects: their `nodejs_active_*` siblings
 * without the suffix carry the same figures. Imported only by modules that serve metrics, so a daemon without
 * them never loads prom-client.
 */
import { collectDefaultMetrics, type Registry } from 'prom-client';

export function registerProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of [
    'nodejs_active_handles_total',
    'nodejs_active_requests_total',
    'nodejs_active_resources_total',
  ])
    registry.removeSingleMetric(name);
}
