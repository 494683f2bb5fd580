/** The Edgeplane API: zod schemas (the one source of truth) and the kinds they make up. */
export * from './deployment.js';
export * from './host.js';
export * from './instance.js';
export * from './kinds.js';
export * from './meta.js';
export * from './network.js';
export * from './placement.js';
export * from './template.js';
export * from './workload.js';
