import { defineConfig } from 'vitest/config';

// Integration tests start real daemons (nats-server, kube-apiserver, dockerd, qemu); they get generous
// timeouts and run one file at a time on the 2-core machines we test on, so they do not starve each other.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    fileParallelism: false,
    reporters: ['default'],
  },
});
