/**
 * A flapping agent link (issue 14): one host's NATS link goes down and up again and again, with jitter, through
 * its fault proxy — outages by reset (RST, and every attempt refused) and by blackhole (half-open), each shorter
 * than `lostAfter`, between short spells of health. Seeded (EDGE_CHAOS_SEED), so a failing run can be replayed.
 *
 * What must hold: the host is declared Lost only when its silence — the gap between two of its reports, read
 * straight from NATS — really exceeded `lostAfter`; while nothing changed no intent is written (the intents
 * bucket's stream sequence does not move); no instance restarts. Figures: outages, the longest silence, how often
 * the host was seen Disconnected.
 *
 * `npm test` flaps for 90 s, `npm run chaos` for ten minutes (EDGE_FLAP_SECONDS overrides both).
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { sleep } from '../../../deploy/stack/proc.js';
import { Subjects } from '../../../shared/nats/subjects.js';
import { useEdgeStack } from '../../harness/edge.js';
import { runningContainers, watchFleet } from '../../harness/fleet-watch.js';
import { cleanup, waitFor } from '../../harness/index.js';
import { nginxWorkload } from '../../harness/objects.js';
import { reportFigures } from '../figures.js';
import { seededRandom } from '../random.js';
import { chaosLevel } from '../settings.js';

const LOST_AFTER_SECONDS = 20;
const FLAP_SECONDS = Number(process.env.EDGE_FLAP_SECONDS ?? chaosLevel({ test: 90, chaos: 600 }));
const SEED = Number(process.env.EDGE_CHAOS_SEED ?? 14);
const stack = useEdgeStack({ lostAfterSeconds: LOST_AFTER_SECONDS, agentsThroughProxy: true });

describe('a flapping agent link', () => {
  it(`for ${FLAP_SECONDS} s: Lost only after real silence past lostAfter, no intent write when nothing changed`, async () => {
    const s = stack();
    const rng = seededRandom(SEED);
    await s.kubectl(['create', 'namespace', 'flap']);
    await s.kubectl(['apply', '-n', 'flap', '-f', '-'], {
      input: nginxWorkload({ name: 'flappy', replicas: 3 }),
    });
    await s.waitForJsonPath(
      'workload.compute.miloapis.com flappy -n flap',
      '{.status.readyReplicas}',
      (v) => v === '3',
      180_000,
    );
    const victim = s.hosts[0]!;
    const proxy = s.agentProxies.get(victim)!;
    const fleet = await watchFleet(s.nats.url);
    await waitFor('a report of every host', () => s.hosts.every((h) => fleet.hosts.has(h)), {
      timeoutMs: 30_000,
    });
    const containers = new Map<string, string[]>();
    for (const h of s.hosts) containers.set(h, await runningContainers(h));
    const nc = await connect({ servers: s.nats.url });
    cleanup(() => nc.close());
    const jsm = await jetstreamManager(nc);
    const stream = `KV_${new Subjects().intentsBucket}`;
    const intentSeq = async () => (await jsm.streams.info(stream)).state.last_seq;
    const seqBefore = await intentSeq();

    // The flapping, in the background: outages of 1 s to lostAfter − 8 s, healthy spells of 1–6 s.
    let outages = 0;
    let flapping = true;
    const flapper = (async () => {
      while (flapping) {
        outages++;
        if (rng.next() < 0.5) {
          proxy.refuse(true);
          proxy.reset();
        } else proxy.set('both', { mode: 'blackhole' });
        await sleep(1000 + rng.next() * (LOST_AFTER_SECONDS - 9) * 1000);
        proxy.heal();
        await sleep(1000 + rng.next() * 5000);
      }
    })();

    // The oracle, every second: the host's state against its real silence.
    const start = Date.now();
    let disconnectedSeen = 0;
    let lostSeen = 0;
    const wrongLost: string[] = [];
    let previous = 'Ready';
    while (Date.now() - start < FLAP_SECONDS * 1000) {
      const r = await s.kubectl(['get', 'host', victim, '-o', 'jsonpath={.status.state}']);
      const state = r.stdout;
      const silentMs = Date.now() - (fleet.hosts.get(victim)?.lastAt ?? 0);
      if (state === 'Disconnected' && previous !== 'Disconnected') disconnectedSeen++;
      if (state === 'Lost' && previous !== 'Lost') {
        lostSeen++;
        // kubectl's answer can lag the decision by a second or two, never lead it.
        if (fleet.maxGapMs(victim) < LOST_AFTER_SECONDS * 1000)
          wrongLost.push(`Lost after ${silentMs} ms of silence (longest ${fleet.maxGapMs(victim)} ms)`);
      }
      previous = state;
      await sleep(1000);
    }
    flapping = false;
    await flapper;
    proxy.heal();
    await s.waitForJsonPath(`host ${victim}`, '{.status.state}', (v) => v === 'Ready', 60_000);
    const longestMs = fleet.maxGapMs(victim);
    const seqAfter = await intentSeq();
    const events = await s.kubectl(['get', 'events', '-n', 'flap', '-o', 'jsonpath={.items[*].reason}']);
    const quiet = longestMs < LOST_AFTER_SECONDS * 1000;
    reportFigures({
      scenario: 'partition/flapping-link',
      passed: wrongLost.length === 0 && (!quiet || (lostSeen === 0 && seqAfter === seqBefore)),
      seed: SEED,
      seconds: FLAP_SECONDS,
      lostAfterS: LOST_AFTER_SECONDS,
      outages,
      longestSilenceS: +(longestMs / 1000).toFixed(1),
      disconnectedEpisodes: disconnectedSeen,
      lostEpisodes: lostSeen,
      intentWrites: seqAfter - seqBefore,
    });
    expect(wrongLost).toEqual([]);
    if (quiet) {
      // Nothing was lost, so nothing changed: no intent written, nothing rescheduled, nothing restarted.
      expect(lostSeen).toBe(0);
      expect(seqAfter).toBe(seqBefore);
      expect(events.stdout).not.toContain('Rescheduled');
      for (const h of s.hosts) expect(await runningContainers(h)).toEqual(containers.get(h));
    }
  }, 1_200_000);
});
