/**
 * The harness cleans up after failing tests: run deliberately failing fixtures (test/harness/fixtures) in a child
 * vitest, then check that every daemon they started is gone and every temp dir removed.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, test } from 'vitest';
import { pidAlive, REPO_DIR } from '../../deploy/stack/index.js';
import { tempDir } from '../harness/index.js';

test('daemons and temp dirs of failing tests are cleaned up', () => {
  const recordFile = path.join(tempDir(), 'record.jsonl');
  const r = spawnSync(
    process.execPath,
    [
      path.join(REPO_DIR, 'node_modules/vitest/vitest.mjs'),
      'run',
      '--config',
      path.join(REPO_DIR, 'test/harness/fixtures/vitest.config.ts'),
    ],
    {
      cwd: REPO_DIR,
      encoding: 'utf8',
      env: { ...process.env, EDGE_FIXTURE_RECORD: recordFile },
      timeout: 180_000,
    },
  );
  const out = `${r.stdout}${r.stderr}`;
  expect(r.status, out).toBe(1);
  expect(out).toContain('failed on purpose');
  expect(out).toContain('thrown on purpose');
  expect(out).toMatch(/2 failed/);

  const records = fs
    .readFileSync(recordFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { kind: 'pid' | 'dir'; value: number | string });
  const pids = records.filter((x) => x.kind === 'pid').map((x) => x.value as number);
  const dirs = records.filter((x) => x.kind === 'dir').map((x) => x.value as string);
  expect(pids).toHaveLength(5);
  expect(dirs).toHaveLength(6);
  for (const pid of pids) expect(pidAlive(pid), `pid ${pid}`).toBe(false);
  for (const dir of dirs) expect(fs.existsSync(dir), dir).toBe(false);
});
