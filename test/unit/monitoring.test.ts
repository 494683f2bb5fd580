/**
 * deploy/monitoring/ with Debian's promtool: the alert rules load and behave as alerts.test.yml says, the
 * scrape configuration is valid, and the Grafana dashboard is well-formed (its queries are run against a
 * real Prometheus in test/e2e/observability.test.ts).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_DIR } from '../../deploy/stack/proc.js';

const DIR = path.join(REPO_DIR, 'deploy/monitoring');
const promtool = (...args: string[]) => spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8' });

describe('deploy/monitoring', () => {
  it('alert rules pass promtool check and promtool test rules', () => {
    const check = promtool('check', 'rules', 'alerts.yml');
    expect(check.stdout + check.stderr).toContain('SUCCESS');
    expect(check.status).toBe(0);
    const test = promtool('test', 'rules', 'alerts.test.yml');
    expect(test.stdout + test.stderr).toContain('SUCCESS');
    expect(test.status).toBe(0);
  });

  it('promtool test rules fails when an alert does not fire as expected (the test can fail)', () => {
    const broken = fs
      .readFileSync(path.join(DIR, 'alerts.yml'), 'utf8')
      .replace('edgeplane_host_state{state="Lost"} == 1', 'edgeplane_host_state{state="Gone"} == 1');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edge-alerts-'));
    try {
      fs.writeFileSync(path.join(dir, 'alerts.yml'), broken);
      fs.copyFileSync(path.join(DIR, 'alerts.test.yml'), path.join(dir, 'alerts.test.yml'));
      const r = spawnSync('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: dir, encoding: 'utf8' });
      expect(r.status).not.toBe(0);
      expect(r.stdout + r.stderr).toContain('EdgeplaneHostLost');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the scrape configuration is valid', () => {
    const r = promtool('check', 'config', 'prometheus.yml');
    expect(r.stdout + r.stderr).toContain('is valid prometheus config');
    expect(r.status).toBe(0);
  });

  it('the Grafana dashboard has a query and a unique id in every panel, all on the one data source input', () => {
    const dash = JSON.parse(fs.readFileSync(path.join(DIR, 'grafana-dashboard.json'), 'utf8')) as {
      uid: string;
      __inputs: Array<{ name: string }>;
      panels: Array<{
        id: number;
        title: string;
        targets: Array<{ expr: string; datasource: { uid: string } }>;
      }>;
    };
    expect(dash.uid).toBe('edgeplane-fleet');
    expect(dash.__inputs.map((i) => i.name)).toEqual(['DS_PROMETHEUS']);
    expect(new Set(dash.panels.map((p) => p.id)).size).toBe(dash.panels.length);
    for (const p of dash.panels) {
      expect(p.targets.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets) {
        expect(t.expr, p.title).toMatch(/edgeplane_|process_/);
        // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's own data source placeholder
        expect(t.datasource.uid).toBe('${DS_PROMETHEUS}');
      }
    }
  });
});
