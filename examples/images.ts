/**
 * The images the example manifests reference, built locally from busybox (no registry is reachable here) under
 * exactly the names the manifests use, so every example runs unchanged. Servers answer HTTP with busybox
 * httpd on the port their manifest declares; workers idle until stopped.
 */
import { HTTPD_CMD, type ImageSpec } from '../deploy/stack/images.js';

const httpd = (port: number): ImageSpec => ({
  cmd: ['/bin/httpd', '-f', '-p', String(port), '-h', '/var/www'],
  exposedPorts: [port],
});
/** Runs until SIGTERM, like a queue worker or a log collector with nothing to do. */
const idle: ImageSpec = { cmd: ['/bin/sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'] };

/** Tag → how to build it. */
export const EXAMPLE_IMAGES: Readonly<Record<string, ImageSpec>> = {
  'nginx:latest': { cmd: HTTPD_CMD, exposedPorts: [80] },
  'nginx:alpine': { cmd: HTTPD_CMD, exposedPorts: [80] },
  'nginx:1.25': { cmd: HTTPD_CMD, exposedPorts: [80] },
  'nginx:1.26': { cmd: HTTPD_CMD, exposedPorts: [80] },
  // The guide's advanced example runs `/app/backend --config=...`; the script serves HTTP on 8080.
  'gcr.io/my-project/backend-api:v2.1': {
    ...httpd(8080),
    files: { '/app/backend': '#!/bin/sh\nexec /bin/httpd -f -p 8080 -h /var/www\n' },
  },
  'gcr.io/my-project/worker:latest': idle,
  'myregistry/api:v1.0': httpd(8080),
  'myapp:latest': httpd(3000),
  'fluent/fluent-bit:latest': idle,
  'gcr.io/my-project/my-app:v1.0': httpd(80),
};
