/**
 * Observability on the real stack: a real Prometheus (Debian's, on loopback, 1 s scrapes, with
 * deploy/monitoring/prometheus.yml and its alert rules) scrapes the coordinator — its target is up,
 * `edgeplane_hosts{state="Ready"}` equals the hosts of the test, and every query of the Grafana dashboard
 * answers with data — and Debian's Chromium (headless, playwright-core) shows the live dashboard: a Workload
 * READY 3/3, then, after an agent is killed with SIGKILL, its host row turns Disconnected and then Lost
 * without a reload, while Prometheus sees the host Lost within lostAfter plus one scrape interval.
 *
 * EDGE_DASHBOARD_SCREENSHOT=docs/dashboard.png writes the screenshots of the docs at the end (and -phone.png).
 */
import fs from 'node:fs';
import path from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { httpUrlOf } from '../../deploy/stack/edgeplane.js';
import { type PrometheusHandle, REPO_DIR, startPrometheus } from '../../deploy/stack/index.js';
import { useEdgeStack } from '../harness/edge.js';
import { cleanup, tempDir, waitFor } from '../harness/index.js';

const LOST_AFTER_SECONDS = 15;
const SCRAPE_SECONDS = 1;
/** The registry re-evaluates host states once a second; this test polls Prometheus every 0.25 s. */
const STATE_CHECK_SECONDS = 1;
const POLL_SECONDS = 0.5;
const stack = useEdgeStack({ lostAfterSeconds: LOST_AFTER_SECONDS });
let base = '';
let prometheus: PrometheusHandle;
let context: BrowserContext;
let page: Page;

beforeAll(async () => {
  base = await httpUrlOf(stack().coordinator);
  prometheus = await startPrometheus({
    dir: tempDir('edgeplane-prometheus-'),
    targets: [new URL(base).host],
    intervalSeconds: SCRAPE_SECONDS,
    baseConfig: path.join(REPO_DIR, 'deploy/monitoring/prometheus.yml'),
  });
  cleanup(() => prometheus.stop());
  context = await chromium.launchPersistentContext(tempDir('edgeplane-chromium-'), {
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1100, height: 1000 },
  });
  cleanup(() => context.close());
  page = context.pages()[0] ?? (await context.newPage());
}, 120_000);

/** How long the waits of this file wait (unless they say): a scrape, a page update. */
const WAIT = { timeoutMs: 60_000, intervalMs: 250 };

const hostState = (host: string) =>
  page.evaluate((h) => document.querySelector(`[data-host="${h}"]`)?.getAttribute('data-state') ?? '', host);

describe('observability', () => {
  it('answers /healthz and /readyz, and a real Prometheus scrapes it: target up, Ready hosts = the hosts of the test', async () => {
    const s = stack();
    expect(await (await fetch(`${base}/healthz`)).text()).toBe('ok\n');
    const ready = await fetch(`${base}/readyz`);
    expect([ready.status, await ready.text()]).toEqual([200, 'ok\n']);
    await waitFor(
      'the coordinator target to be up',
      async () => {
        const t = await prometheus.targets();
        return t.length === 1 && t.every((x) => x.health === 'up');
      },
      WAIT,
    );
    const readyHosts = await waitFor(
      'edgeplane_hosts{state="Ready"} to be scraped',
      async () => {
        const r = await prometheus.query('edgeplane_hosts{state="Ready"}');
        return r.length === 1 && Number(r[0]!.value[1]) === s.hosts.length ? r : undefined;
      },
      WAIT,
    );
    expect(Number(readyHosts[0]!.value[1])).toBe(s.hosts.length);
    const leader = await prometheus.query('edgeplane_coordinator_leader');
    expect(leader.map((r) => r.value[1])).toEqual(['1']);
  });

  it('the dashboard shows a Workload READY 3', async () => {
    const s = stack();
    await s.kubectl(['create', 'namespace', 'obs']);
    await s.kubectl(['apply', '-n', 'obs', '-f', '-'], {
      input: `apiVersion: compute.miloapis.com/v1alpha1
kind: Workload
metadata:
  name: web
spec:
  replicas: 3
  template:
    spec:
      containers:
      - name: nginx
        image: nginx:latest
        resources:
          requests:
            cpu: 100m
            memory: 64Mi
`,
    });
    await page.goto(base);
    await page.evaluate(() => {
      (window as unknown as { loadedOnce: boolean }).loadedOnce = true;
    });
    await page.waitForFunction(
      () => document.querySelector('[data-workload="obs/web"] .ready')?.textContent === '3/3',
      undefined,
      { timeout: 180_000, polling: 100 },
    );
    expect(await page.locator('#conn').getAttribute('data-state')).toBe('live');
    for (const h of s.hosts) expect(await hostState(h)).toBe('Ready');
    expect(await page.locator('#instances tbody tr[data-instance]').count()).toBe(3);
  });

  it('every query of the Grafana dashboard answers with data from the real Prometheus', async () => {
    const dash = JSON.parse(
      fs.readFileSync(path.join(REPO_DIR, 'deploy/monitoring/grafana-dashboard.json'), 'utf8'),
    ) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    const queries = dash.panels.flatMap((p) =>
      p.targets.map((t) => ({ panel: p.title, expr: t.expr.replaceAll('$__rate_interval', '1m') })),
    );
    expect(queries.length).toBeGreaterThan(15);
    for (const q of queries) {
      // Rates need two scrapes of a series; everything else is there at once.
      const result = await waitFor(
        `${q.panel}: ${q.expr}`,
        async () => {
          const r = await prometheus.query(q.expr);
          return r.length > 0 ? r : undefined;
        },
        { ...WAIT, timeoutMs: 30_000 },
      );
      expect(result.length, q.expr).toBeGreaterThan(0);
    }
  });

  it('an agent killed with SIGKILL turns Disconnected then Lost on the page without a reload, and Lost in Prometheus within lostAfter + one scrape', async () => {
    const s = stack();
    const victim = s.hosts[0]!;
    const killedAt = Date.now();
    await s.agents.get(victim)!.kill();

    const inPrometheus = waitFor(
      `edgeplane_host_state{host="${victim}",state="Lost"} in Prometheus`,
      async () => {
        const r = await prometheus.query(`edgeplane_host_state{host="${victim}",state="Lost"} == 1`);
        return r.length === 1 ? (Date.now() - killedAt) / 1000 : undefined;
      },
      { ...WAIT, timeoutMs: 60_000 },
    );
    await page.waitForFunction(
      (h) => document.querySelector(`[data-host="${h}"]`)?.getAttribute('data-state') === 'Disconnected',
      victim,
      { timeout: 30_000, polling: 100 },
    );
    const disconnectedAfter = (Date.now() - killedAt) / 1000;
    await page.waitForFunction(
      (h) => document.querySelector(`[data-host="${h}"]`)?.getAttribute('data-state') === 'Lost',
      victim,
      { timeout: 60_000, polling: 100 },
    );
    const lostOnPageAfter = (Date.now() - killedAt) / 1000;
    const lostInPrometheusAfter = await inPrometheus;
    console.log(
      `observability: Disconnected on the page after ${disconnectedAfter.toFixed(1)} s, Lost after ${lostOnPageAfter.toFixed(1)} s; Lost in Prometheus after ${lostInPrometheusAfter.toFixed(1)} s (lostAfter ${LOST_AFTER_SECONDS} s, scrape ${SCRAPE_SECONDS} s)`,
    );
    // No reload: the marker set on the first load is still there.
    expect(await page.evaluate(() => (window as unknown as { loadedOnce?: boolean }).loadedOnce)).toBe(true);
    expect(lostInPrometheusAfter).toBeLessThanOrEqual(
      LOST_AFTER_SECONDS + SCRAPE_SECONDS + STATE_CHECK_SECONDS + POLL_SECONDS,
    );
    expect(await hostState(s.hosts[1]!)).toBe('Ready');

    const shot = process.env.EDGE_DASHBOARD_SCREENSHOT;
    if (shot) {
      // The replacement placed elsewhere, for a picture that shows the whole story.
      await page
        .waitForFunction(
          () => document.querySelector('[data-workload="obs/web"] .ready')?.textContent === '3/3',
          undefined,
          { timeout: 120_000 },
        )
        .catch(() => undefined);
      await page.screenshot({ path: path.resolve(REPO_DIR, shot), fullPage: true });
      // And as a phone shows it (the page's narrow layout).
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({
        path: path.resolve(REPO_DIR, shot.replace(/\.png$/, '-phone.png')),
        fullPage: true,
      });
    }
  });
});
