/**
 * The template hash: what tells one revision of a Workload's instances from another. It covers the template,
 * the per-instance limits and the Secret/ConfigMap values the instances get, so a change of any of them rolls
 * the instances. The exact bytes hashed must never change: every running instance carries its hash, and a
 * different function would roll every Workload at the next coordinator start.
 */
import { createHash } from 'node:crypto';
import type { ResourceAmounts } from './api/meta.js';
import type { ResolvedValues } from './nats/messages.js';

/** A hash of what the instances run, including the Secret/ConfigMap values they get; a change rolls them. */
export function templateHash(template: unknown, limits: ResourceAmounts, values?: ResolvedValues): string {
  return createHash('sha256')
    .update(JSON.stringify({ template, limits, ...(values ? { values } : {}) }))
    .digest('hex')
    .slice(0, 10);
}
