/**
 * The chaos topology itself: its NATS members route to each other only through the fault proxies (cutting a
 * member's proxies really cuts it: its routes drop, the others keep a meta leader) and everything heals back.
 * Also shows a client (an agent) keeps working when the member it may be on is isolated.
 */
import { describe, expect, it } from 'vitest';
import { httpGet } from '../../deploy/stack/proc.js';
import { waitFor } from '../harness/index.js';
import { isolateNatsMember } from './faults.js';
import { reportFigures } from './figures.js';
import { startTopology, waitForMetaLeader } from './topology.js';

const routesOf = async (monitorUrl: string) =>
  (JSON.parse((await httpGet(`${monitorUrl}/routez`)).body) as { num_routes?: number }).num_routes ?? 0;

describe('chaos topology', () => {
  it('routes every member link through its proxies: an isolated member loses its routes, then gets them back', async () => {
    const t = await startTopology({ natsMembers: 3, coordinators: 1, locations: 1, agentsPerLocation: 1 });
    await t.waitForHostsReady();
    expect(t.proxies.length).toBe(3 * 2 + 3 + 1 + 3); // routes, coordinator's NATS links, its kube link, agent's
    for (const m of t.nats) expect(await routesOf(m.server.monitorUrl)).toBe(2);

    const cutAt = Date.now();
    const heal = isolateNatsMember(t, 0, 'reset');
    await waitFor(
      'member n1 without routes',
      async () => (await routesOf(t.nats[0]!.server.monitorUrl)) === 0,
      {
        timeoutMs: 60_000,
        intervalMs: 250,
      },
    );
    const isolatedMs = Date.now() - cutAt;
    // The other two still route to each other (not through n1) and elect a meta leader among themselves.
    for (const m of t.nats.slice(1)) expect(await routesOf(m.server.monitorUrl)).toBe(1);
    const leader = await waitForMetaLeader(t.nats.slice(1));
    expect(['n2', 'n3']).toContain(leader);
    // The agent, cut from n1 only, stays Ready.
    await t.waitForHostsReady(60_000);

    await heal();
    const healedAt = Date.now();
    await waitFor(
      'every member routing to every other again',
      async () => {
        for (const m of t.nats) if ((await routesOf(m.server.monitorUrl)) !== 2) return false;
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    reportFigures({
      scenario: 'topology/member-isolation',
      passed: true,
      routesGoneMs: isolatedMs,
      routesBackMs: Date.now() - healedAt,
    });
  }, 600_000);
});
