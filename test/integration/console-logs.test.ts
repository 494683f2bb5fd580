/**
 * `edgectl logs` of a VM: the QEMU driver's serial console (the file real qemu writes) as an output source —
 * everything, the last N lines, and following what the guest prints while it powers off. VMs have no exec.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { Driver } from '../../agent/drivers/driver.js';
import type { OutputSource } from '../../agent/drivers/output.js';
import { GUEST_READY_MARKER, waitFor } from '../../deploy/stack/index.js';
import { createLogger } from '../../shared/log.js';
import { tempDir } from '../harness/index.js';
import {
  destroyVmsAfterTest,
  GUEST_IMAGE,
  guestKernelCatalog,
  testQemuDriver,
  vmRequest,
} from '../harness/vm.js';

const log = createLogger({ name: 'test', level: 'warn' });
const IMAGE = GUEST_IMAGE;

/** Reads a source to its end (or until `until` holds), returning the text. */
async function collect(
  start: (onData: (s: string, d: Buffer) => void) => Promise<OutputSource>,
  until?: (text: string) => boolean,
): Promise<{ text: string; source: OutputSource; reason: string }> {
  let text = '';
  let resolveUntil: () => void = () => {};
  const reached = new Promise<void>((r) => {
    resolveUntil = r;
  });
  const source = await start((_s, d) => {
    text += d.toString();
    if (until?.(text)) resolveUntil();
  });
  if (until) {
    await reached;
    return { text, source, reason: 'reached' };
  }
  // The end first: `text` must be read after it, not when the object literal starts being built.
  const { reason } = await source.ended;
  return { text, source, reason };
}

it('reads a VM serial console: all of it, --tail, and -f while the guest powers off', async () => {
  const { catalog } = await guestKernelCatalog();
  const dir = tempDir('edgeplane-console-');
  const driver = testQemuDriver({ dir, catalog, host: 'console-host', kvmTestTimeoutMs: 8000, log });
  destroyVmsAfterTest(driver);
  await driver.start(vmRequest(IMAGE));
  const file = join(dir, 'vms', 'ns_vm-0', 'console.log');
  await waitFor(
    'the guest ready marker',
    () => existsSync(file) && readFileSync(file, 'utf8').includes(GUEST_READY_MARKER),
    {
      timeoutMs: 90_000,
    },
  );

  // Everything, as qemu wrote it, then the end.
  const all = await collect((d) => driver.logs('ns', 'vm-0', { follow: false }, d));
  expect(all.reason).toBe('end of log');
  expect(all.text).toContain(GUEST_READY_MARKER);
  expect(readFileSync(file, 'utf8').startsWith(all.text)).toBe(true);

  // The last 3 lines.
  const tail = await collect((d) => driver.logs('ns', 'vm-0', { follow: false, tail: 3 }, d));
  const lines = all.text.replace(/\n$/, '').split('\n');
  expect(tail.text.replace(/\n$/, '').split('\n')).toEqual(lines.slice(-3));

  // Follow from now: the guest's power-off messages arrive as it prints them.
  const follow = collect(
    (d) => driver.logs('ns', 'vm-0', { follow: true, tail: 0 }, d),
    (t) => /power|halt|reboot/i.test(t),
  );
  await new Promise((r) => setTimeout(r, 500));
  await driver.stop('ns', 'vm-0', 30);
  const followed = await follow;
  expect(followed.text).not.toContain(GUEST_READY_MARKER);
  followed.source.close();
  expect((await followed.source.ended).reason).toBe('closed');

  // What a console cannot do: --since, -c; and no exec.
  await expect(driver.logs('ns', 'vm-0', { follow: false, sinceSeconds: 60 }, () => {})).rejects.toThrow(
    'since: a VM console has no timestamps',
  );
  await expect(driver.logs('ns', 'vm-0', { follow: false, container: 'x' }, () => {})).rejects.toThrow(
    'container: a VM has no containers',
  );
  expect((driver as Driver).execStream).toBeUndefined();
});
