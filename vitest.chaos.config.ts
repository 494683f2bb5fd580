import { defineConfig } from 'vitest/config';

// `npm run chaos`: every chaos scenario at full length (test/chaos/README.md). `*.chaos.ts` files run only here;
// `*.test.ts` scenarios run here with EDGE_CHAOS=full and in `npm test` (vitest.config.ts) with short settings.
export default defineConfig({
  test: {
    include: ['test/chaos/**/*.chaos.ts', 'test/chaos/**/*.test.ts'],
    env: { EDGE_CHAOS: 'full' },
    testTimeout: 60 * 60_000,
    hookTimeout: 600_000,
    fileParallelism: false,
    reporters: ['default'],
  },
});
