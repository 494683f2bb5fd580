/**
 * One scenario file, two lengths: under `npm test` (vitest.config.ts) a `*.test.ts` scenario runs its short
 * setting; under `npm run chaos` (vitest.chaos.config.ts sets EDGE_CHAOS=full) the same file runs the full one.
 * Files named `*.chaos.ts` run only under `npm run chaos`.
 */

/** True under `npm run chaos`. */
export const CHAOS_FULL = process.env.EDGE_CHAOS === 'full';

/** The short value under `npm test`, the full one under `npm run chaos`. */
export function chaosLevel<T>(v: { test: T; chaos: T }): T {
  return CHAOS_FULL ? v.chaos : v.test;
}
