/**
 * Unreadable VM state is never taken for "no VM" (issue 14, "state files a crash can corrupt"): one real VM is
 * started by the QEMU driver, its vm.json is then torn (as an in-place write cut by a crash left it), and a
 * restarted agent's driver must neither start a second qemu over the directory nor kill the running one: start
 * refuses with an error naming the file and the live qemu pid (the instance reports it), list leaves it out.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../shared/log.js';
import { pidAlive } from '../../shared/os.js';
import { cleanup, tempDir } from '../harness/index.js';
import { GUEST_IMAGE, guestKernelCatalog, testQemuDriver, vmRequest } from '../harness/vm.js';

const log = createLogger({ name: 'test', level: 'silent' });
const IMAGE = GUEST_IMAGE;

/** Pids of live processes whose command line names `dir` (qemu processes of that VM directory). */
function processesIn(dir: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(dir) && pidAlive(Number(e)))
        out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

describe('QEMU driver state files', () => {
  it('refuses to start a second VM over a directory whose vm.json is torn while its qemu runs', async () => {
    const { guest, catalog } = await guestKernelCatalog();
    const dir = tempDir('edgeplane-agent-vm-state-');
    const make = () => testQemuDriver({ dir, catalog, accel: guest.accel, log });
    const request = vmRequest(IMAGE);
    const first = make();
    cleanup(() => first.destroy('ns', 'vm-0'));
    await first.start(request);
    const vmDir = join(dir, 'vms', 'ns_vm-0');
    const [qemu] = processesIn(vmDir);
    expect(qemu).toBeDefined();

    // The record is torn: the first half of the JSON, as a crash in the middle of an in-place write leaves it.
    const record = readFileSync(join(vmDir, 'vm.json'), 'utf8');
    writeFileSync(join(vmDir, 'vm.json'), record.slice(0, record.length >> 1));

    // A restarted agent: a new driver on the same directory.
    const again = make();
    expect(await again.list()).toEqual([]);
    await expect(again.inspect('ns', 'vm-0')).rejects.toThrow(/vm\.json is unreadable/);
    await expect(again.start(request)).rejects.toThrow(
      new RegExp(`vm\\.json is unreadable .*qemu pid ${qemu} still runs`),
    );
    // Exactly the one qemu, still running; its directory (disk, console, record) untouched.
    expect(processesIn(vmDir)).toEqual([qemu]);
    expect(readdirSync(vmDir)).toContain('vm.json');
  }, 180_000);
});
