/**
 * QEMU fixtures: an image catalog whose artifacts (the test guest built by deploy/install.sh) are served over HTTP
 * from 127.0.0.1 with their sha256, as a host's catalog would name them, and a QemuDriver on a temp directory
 * (VMs under `<dir>/vms`, the artifact cache under `<dir>/images`) publishing on 127.0.0.1.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { InstanceRequest } from '../../agent/drivers/driver.js';
import { QemuDriver, type QemuDriverOptions } from '../../agent/drivers/qemu.js';
import { ArtifactCache, type Catalog } from '../../agent/images/catalog.js';
import { type TestGuest, testGuest } from '../../deploy/stack/index.js';
import { machineTypeResources } from '../../shared/resources.js';
import { cleanup } from './index.js';

/** The catalog name of the test guest booted from its kernel and initramfs. */
export const GUEST_IMAGE = 'projects/edgeplane-test/global/images/busybox-guest';

/** The hex sha256 of `b`, as the catalog writes it. */
export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Serves `files` (URL path → body; 404 for anything else) on 127.0.0.1 until the test ends; counts the requests.
 * `bytesPerSecond` paces every body (64 KiB pieces), so a download takes a while (a window to kill the agent in);
 * `sent` says how far each paced body got (bytes written, by path, of the latest request).
 */
export async function serveFiles(
  files: Record<string, Buffer>,
  o: { bytesPerSecond?: number } = {},
): Promise<{ requests: string[]; base: string; sent: Map<string, number> }> {
  const requests: string[] = [];
  const sent = new Map<string, number>();
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    const body = files[req.url ?? ''];
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': body.length });
    if (!o.bytesPerSecond) {
      res.end(body);
      return;
    }
    const piece = 64 * 1024;
    const pause = (piece / o.bytesPerSecond) * 1000;
    let off = 0;
    const next = () => {
      if (res.destroyed) return;
      if (off >= body.length) {
        res.end();
        return;
      }
      res.write(body.subarray(off, off + piece));
      off += piece;
      sent.set(req.url ?? '', Math.min(off, body.length));
      setTimeout(next, pause);
    };
    next();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup(() => new Promise<void>((r) => server.close(() => r())));
  return { requests, sent, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** What {@link guestKernelCatalog} returns. */
export interface GuestKernelCatalog {
  /** The test guest's paths and accelerator. */
  guest: TestGuest;
  /** The kernel and initramfs bytes served. */
  kernel: Buffer;
  initrd: Buffer;
  /** The HTTP server's base URL and the paths it was asked for. */
  srv: { requests: string[]; base: string };
  /** {@link GUEST_IMAGE}: kernel `/vmlinuz`, initramfs `/initrd.gz`, serial console on ttyS0. */
  catalog: Catalog;
}

/** The test guest as {@link GUEST_IMAGE} (direct kernel boot); `badSha`: the catalog's kernel sha256 is wrong. */
export async function guestKernelCatalog(o: { badSha?: boolean } = {}): Promise<GuestKernelCatalog> {
  const guest = await testGuest();
  const kernel = readFileSync(guest.kernelPath);
  const initrd = readFileSync(guest.initrdPath);
  const srv = await serveFiles({ '/vmlinuz': kernel, '/initrd.gz': initrd });
  const catalog: Catalog = {
    images: {
      [GUEST_IMAGE]: {
        kernel: {
          url: `${srv.base}/vmlinuz`,
          sha256: o.badSha ? sha256(Buffer.from('other')) : sha256(kernel),
        },
        initrd: { url: `${srv.base}/initrd.gz`, sha256: sha256(initrd) },
        append: 'console=ttyS0 quiet panic=-1',
      },
    },
  };
  return { guest, kernel, initrd, srv, catalog };
}

/** What {@link testQemuDriver} takes: the driver's own options win over the defaults below. */
export interface TestQemuDriverOptions
  extends Omit<QemuDriverOptions, 'host' | 'vmDir' | 'catalog' | 'cache' | 'publishAddress'> {
  /** The temp directory the VMs (`vms/`) and the artifact cache (`images/`) live in. */
  dir: string;
  /** The host's image catalog. */
  catalog: Catalog;
  /** The host's name; `vm-host` unless given. */
  host?: string;
}

/** A QemuDriver over `dir` and `catalog`, publishing on 127.0.0.1. Nothing is cleaned up: see {@link destroyVmsAfterTest}. */
export function testQemuDriver(o: TestQemuDriverOptions): QemuDriver {
  const { dir, catalog, host = 'vm-host', ...rest } = o;
  return new QemuDriver({
    host,
    vmDir: join(dir, 'vms'),
    catalog: () => catalog,
    cache: new ArtifactCache(join(dir, 'images')),
    publishAddress: '127.0.0.1',
    ...rest,
  });
}

/** Destroys every VM `driver` lists when the test ends. */
export function destroyVmsAfterTest(driver: QemuDriver): void {
  cleanup(async () => {
    for (const s of await driver.list()) await driver.destroy(s.namespace, s.name);
  });
}

/** Instance `ns/vm-0` of Workload `vm` running `image` as an e2-micro (with its resources); `extra` adds template fields. */
export function vmRequest(image: string, extra: Partial<InstanceRequest['template']> = {}): InstanceRequest {
  return {
    namespace: 'ns',
    name: 'vm-0',
    workload: 'vm',
    templateHash: 'h1',
    template: { image, machineType: 'e2-micro', ...extra },
    limits: machineTypeResources('e2-micro'),
    labels: {},
  };
}
