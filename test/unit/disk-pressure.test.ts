/**
 * The agent's DiskPressure condition (agent/host/disk-pressure.ts) and the image cache's clean-up of partial
 * downloads left by dead processes (agent/images/catalog.ts). The full-disk behaviour itself, on a real full
 * filesystem, is test/chaos/disk/.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskPressure, isDiskError } from '../../agent/host/disk-pressure.js';
import { ArtifactCache } from '../../agent/images/catalog.js';

const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });

describe('DiskPressure', () => {
  it('is True while some kind of write fails, naming each, and False once each succeeded again', () => {
    const d = new DiskPressure();
    expect(d.condition()).toMatchObject({ type: 'DiskPressure', status: 'False' });
    const since = d.condition().lastTransitionTime;
    expect(d.failed('intents copy', '/s/intents.json', enospc)).toBe(true);
    expect(d.failed('intents copy', '/s/intents.json', enospc)).toBe(false);
    expect(d.failed('image cache', '/c', enospc)).toBe(true);
    const c = d.condition();
    expect(c).toMatchObject({ status: 'True', reason: 'WriteFailed' });
    expect(c.message).toBe(
      'intents copy not written: /s/intents.json: ENOSPC: no space left on device, write; image cache not written: /c: ENOSPC: no space left on device, write',
    );
    expect(d.succeeded('intents copy')).toBe(true);
    expect(d.succeeded('intents copy')).toBe(false);
    expect(d.condition()).toMatchObject({ status: 'True', message: expect.stringMatching(/^image cache/) });
    const flipped = d.condition().lastTransitionTime;
    expect(d.succeeded('image cache')).toBe(true);
    expect(d.condition().status).toBe('False');
    expect(flipped).toBeDefined();
    expect(since).toBeDefined();
  });

  it('counts filesystem errors only', () => {
    expect(isDiskError(enospc)).toBe(true);
    expect(isDiskError(Object.assign(new Error('x'), { code: 'EROFS' }))).toBe(true);
    expect(isDiskError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe(false);
    expect(isDiskError(new Error('sha256 is …'))).toBe(false);
  });
});

describe('ArtifactCache partial downloads', () => {
  it('removes the partial files of processes that are gone, keeps its own and whole artifacts', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ep-cache-'));
    try {
      const sha = 'a'.repeat(64);
      const dead = `sha256-${sha}.999999999.part`;
      const own = `sha256-${sha}.${process.pid}.part`;
      const whole = `sha256-${sha}`;
      for (const f of [dead, own, whole]) fs.writeFileSync(path.join(dir, f), 'x');
      expect(new ArtifactCache(dir).removeStalePartials()).toEqual([dead]);
      expect(fs.readdirSync(dir).sort()).toEqual([whole, own].sort());
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
