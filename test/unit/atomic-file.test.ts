import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { transformSync } from 'esbuild';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { REPO_DIR } from '../../deploy/stack/index.js';
import { writeFileAtomic } from '../../shared/atomic-file.js';
import { loadOrCreateSealKey } from '../../shared/nats/seal.js';
import { tempDir } from '../harness/index.js';

describe('writeFileAtomic', () => {
  it('creates and replaces the file with exactly the data, leaving no temp file', () => {
    const dir = tempDir();
    const file = join(dir, 'vm.json');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (data) => {
        writeFileAtomic(file, data);
        expect(new Uint8Array(readFileSync(file))).toEqual(data);
        expect(readdirSync(dir)).toEqual(['vm.json']);
      }),
      { numRuns: 50 },
    );
  });

  it('sets the given mode exactly (a secret stays 0600 whatever the umask)', () => {
    const file = join(tempDir(), 'seal.nk');
    writeFileAtomic(file, 'SX...\n', { mode: 0o600 });
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('leaves the old file and no temp file when the write fails', () => {
    const dir = tempDir();
    const target = join(dir, 'state');
    mkdirSync(target); // renaming a file over a directory fails
    writeFileSync(join(target, 'keep'), 'x');
    expect(() => writeFileAtomic(target, 'new')).toThrow();
    expect(readdirSync(dir)).toEqual(['state']);
    expect(readFileSync(join(target, 'keep'), 'utf8')).toBe('x');
  });

  it('never leaves a torn file when the writer is SIGKILLed at any moment (real processes)', async () => {
    const dir = tempDir();
    const helper = join(dir, 'atomic-file.mjs');
    const ts = readFileSync(join(REPO_DIR, 'shared/atomic-file.ts'), 'utf8');
    writeFileSync(helper, transformSync(ts, { loader: 'ts', format: 'esm' }).code);
    // Rewrites a 1 MiB record as fast as it can; each version is whole JSON with a known length.
    const writer = `import { writeFileAtomic } from ${JSON.stringify(helper)};
      const pad = 'x'.repeat(1 << 20);
      for (let i = 0; ; i++) writeFileAtomic(process.argv[1], JSON.stringify({ i, pad }));`;
    const file = join(dir, 'vm.json');
    for (let run = 0; run < 12; run++) {
      const child = spawn(process.execPath, ['--input-type=module', '-e', writer, file], { stdio: 'ignore' });
      const exited = new Promise<NodeJS.Signals | null>((r) =>
        child.once('exit', (_code, signal) => r(signal)),
      );
      await new Promise((r) => setTimeout(r, 80 + Math.random() * 200));
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL'); // it was still writing, not failed early
      if (!existsSync(file)) continue; // killed before its first rename: no file, never a partial one
      const record = JSON.parse(readFileSync(file, 'utf8')) as { i: number; pad: string };
      expect(record.pad).toHaveLength(1 << 20);
    }
    expect(existsSync(file)).toBe(true);
  }, 60_000);
});

describe('the seal key file', () => {
  it('is created whole with mode 0600, kept across loads, and a torn one is an error, never a new key', () => {
    const file = join(tempDir(), 'state', 'seal.nk');
    const kp = loadOrCreateSealKey(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(loadOrCreateSealKey(file).getPublicKey()).toBe(kp.getPublicKey());
    const seed = readFileSync(file, 'utf8');
    writeFileSync(file, seed.slice(0, 10));
    expect(() => loadOrCreateSealKey(file)).toThrow(/seal key .*seal\.nk/);
    expect(readFileSync(file, 'utf8')).toBe(seed.slice(0, 10));
  });
});
