/**
 * Workload manifests, differentially (issue 14, "Fuzzing"): fast-check mutates the examples (each example in each
 * of the three API groups; fields set to wrong types, huge values, unicode, deep nesting; fields removed; unknown
 * fields added) and every manifest gets two verdicts: our zod schema's (WorkloadSpec, what the coordinator
 * validates with) and the real kube-apiserver's with our generated CRDs installed (a server-side dry run with
 * strict field validation, what `kubectl apply --dry-run=server` does). Disagreements are classified:
 *
 * - `crd-looser`: the API server stores a spec our schema refuses. The user sees "created", then InvalidSpec.
 *   A defect of the CRD generator (shared/gen/) or of the schema: none may remain.
 * - `crd-stricter`: the API server refuses a spec our schema takes. Allowed only for the one known reason:
 *   unknown fields (strict field validation refuses them; zod drops them, as the API server's pruning would).
 *
 * Then the manifests the API server accepted are applied for real to a running coordinator, which must not crash
 * and must give every one of them a status condition.
 */
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { KubeClient } from '../../../coordinator/kube/client.js';
import { startCoordinator } from '../../../deploy/stack/edgeplane.js';
import { REPO_DIR } from '../../../deploy/stack/index.js';
import { WORKLOAD_GROUPS, WorkloadSpec } from '../../../shared/api/index.js';
import { formatIssues } from '../../../shared/nats/messages.js';
import { startNatsAndKube } from '../../harness/edge.js';
import { cleanup, tempDir, waitFor } from '../../harness/index.js';
import { reportFigures } from '../figures.js';
import { describeMutations, fuzzParams, mutations } from './arbitraries.js';

/** The Workload examples (the product documents' examples, runnable), each in each API group. */
function baseManifests(): Array<{ source: string; group: string; spec: unknown }> {
  const dir = path.join(REPO_DIR, 'examples');
  const out: Array<{ source: string; group: string; spec: unknown }> = [];
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.yaml'))) {
    for (const d of parseAllDocuments(fs.readFileSync(path.join(dir, f), 'utf8'))) {
      const doc = d.toJSON() as { kind?: string; spec?: unknown };
      if (doc?.kind !== 'Workload') continue;
      for (const group of WORKLOAD_GROUPS) out.push({ source: f, group, spec: doc.spec });
    }
  }
  return out;
}

/** A generated manifest: the group it is applied in, its spec, and how it was made. */
interface Generated {
  group: string;
  spec: unknown;
  what: string;
}

function manifests(): fc.Arbitrary<Generated> {
  const bases = baseManifests();
  return fc.constantFrom(...bases).chain((b) =>
    fc.oneof(
      {
        weight: 6,
        arbitrary: mutations(b.spec).map(({ doc, applied }) => ({
          group: b.group,
          spec: doc,
          what: `${b.source} in ${b.group}: ${describeMutations(applied)}`,
        })),
      },
      // Unchanged: every example must be accepted by both.
      {
        weight: 1,
        arbitrary: fc.constant({ group: b.group, spec: b.spec, what: `${b.source} in ${b.group}` }),
      },
      {
        weight: 1,
        arbitrary: fc.jsonValue({ maxDepth: 4 }).map((spec) => ({
          group: b.group,
          spec,
          what: `arbitrary spec ${JSON.stringify(spec).slice(0, 200)}`,
        })),
      },
    ),
  );
}

/** The API server's verdict on a create, dry run or real. */
type ServerVerdict = { ok: true; stored: { spec?: unknown } } | { ok: false; code: number; message: string };

async function serverVerdict(
  kube: KubeClient,
  group: string,
  name: string,
  spec: unknown,
  dryRun: boolean,
): Promise<ServerVerdict> {
  try {
    const stored = (await kube.custom.createNamespacedCustomObject({
      group,
      version: 'v1alpha1',
      namespace: 'default',
      plural: 'workloads',
      body: { apiVersion: `${group}/v1alpha1`, kind: 'Workload', metadata: { name }, spec },
      ...(dryRun ? { dryRun: 'All' } : {}),
      fieldValidation: 'Strict',
    })) as { spec?: unknown };
    return { ok: true, stored };
  } catch (err) {
    const e = err as { code?: number; body?: unknown; message?: string };
    const body = typeof e.body === 'string' ? e.body : JSON.stringify(e.body ?? '');
    let message = body;
    try {
      message = (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {}
    return { ok: false, code: e.code ?? 0, message: message || String(e.message) };
  }
}

/** A disagreement between the two verdicts. */
interface Disagreement {
  kind: 'crd-looser' | 'crd-stricter' | 'server-error';
  what: string;
  detail: string;
}

describe('Workload manifests: our schema vs the real kube-apiserver', () => {
  it('agree on every generated manifest (but unknown fields), and the coordinator conditions every accepted one', async () => {
    const dir = tempDir('edgeplane-fuzz-manifests-');
    const { nats, kube } = await startNatsAndKube(dir);
    const client = new KubeClient(kube.kubeconfigPath);
    const runs = fuzzParams(150, 3000);
    const disagreements: Disagreement[] = [];
    const accepted: Generated[] = [];
    let bothAccept = 0;
    let bothRefuse = 0;
    let n = 0;
    await fc.assert(
      fc.asyncProperty(manifests(), async (m) => {
        const zod = WorkloadSpec.safeParse(m.spec);
        const server = await serverVerdict(client, m.group, `fz-${n++}`, m.spec, true);
        if (server.ok) {
          // What the coordinator will read: the object as stored (defaulted).
          const stored = WorkloadSpec.safeParse(server.stored.spec);
          if (stored.success) {
            bothAccept++;
            if (accepted.length < 400) accepted.push(m);
          } else
            disagreements.push({
              kind: 'crd-looser',
              what: m.what,
              detail: formatIssues(stored.error, 'spec'),
            });
        } else if (server.code >= 500 || server.code === 0) {
          disagreements.push({
            kind: 'server-error',
            what: m.what,
            detail: `${server.code} ${server.message}`,
          });
        } else if (zod.success) {
          disagreements.push({ kind: 'crd-stricter', what: m.what, detail: server.message });
        } else bothRefuse++;
      }),
      runs,
    );
    const unknownField = (d: Disagreement) =>
      d.kind === 'crd-stricter' &&
      /unknown field/.test(d.detail) &&
      !/Invalid value|Required value/.test(d.detail);
    const defects = disagreements.filter((d) => !unknownField(d));
    reportFigures({
      scenario: 'fuzz/workload-manifests',
      passed: defects.length === 0,
      runs: runs.numRuns,
      seed: runs.seed,
      bothAccept,
      bothRefuse,
      unknownFieldOnly: disagreements.length - defects.length,
      crdLooser: defects.filter((d) => d.kind === 'crd-looser').length,
      crdStricter: defects.filter((d) => d.kind === 'crd-stricter').length,
      serverErrors: defects.filter((d) => d.kind === 'server-error').length,
    });
    for (const d of defects.slice(0, 20))
      console.log(`disagreement ${d.kind}: ${d.what}\n  -> ${d.detail.slice(0, 400)}`);
    expect(defects.map((d) => `${d.kind}: ${d.what} -> ${d.detail.slice(0, 300)}`)).toEqual([]);
    expect(bothAccept).toBeGreaterThan(0);
    expect(bothRefuse).toBeGreaterThan(0);

    // The accepted ones, applied for real: the coordinator stays up and conditions every Workload.
    const coordinator = startCoordinator({
      dir: path.join(dir, 'coordinator'),
      kubeconfig: kube.kubeconfigPath,
      nats: [nats.url],
    });
    cleanup(() => coordinator.stop());
    const applied: Array<{ group: string; name: string; what: string }> = [];
    for (const [i, m] of accepted
      .slice(0, Math.min(accepted.length, runs.numRuns >= 1000 ? 400 : 40))
      .entries()) {
      const name = `fz-applied-${i}`;
      const r = await serverVerdict(client, m.group, name, m.spec, false);
      expect(r.ok, `${m.what}: ${r.ok ? '' : r.message}`).toBe(true);
      applied.push({ group: m.group, name, what: m.what });
    }
    const conditioned = async () => {
      const missing: string[] = [];
      for (const a of applied) {
        const wl = (await client.custom.getNamespacedCustomObject({
          group: a.group,
          version: 'v1alpha1',
          namespace: 'default',
          plural: 'workloads',
          name: a.name,
        })) as { status?: { conditions?: unknown[] } };
        if (!wl.status?.conditions?.length) missing.push(`${a.group}/${a.name} (${a.what})`);
      }
      return missing;
    };
    let missing: string[] = [];
    await waitFor(
      'a condition on every applied Workload',
      async () => {
        missing = await conditioned();
        return missing.length === 0;
      },
      {
        timeoutMs: 180_000,
        intervalMs: 2000,
        abort: () =>
          coordinator.exit ? `the coordinator exited: ${JSON.stringify(coordinator.exit)}` : undefined,
      },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; without a condition: ${missing.slice(0, 10).join('; ')}`);
    });
    expect(coordinator.exit).toBeUndefined();
    reportFigures({ scenario: 'fuzz/workload-manifests-applied', passed: true, applied: applied.length });
  });
});
