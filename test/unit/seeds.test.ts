/**
 * Every Workload manifest in the product documents (../shared/seeds) must parse with our schema unchanged:
 * a user who copies an example expects it to work.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { WORKLOAD_GROUPS, WorkloadSpec } from '../../shared/api/index.js';
import { formatIssues } from '../../shared/nats/messages.js';

/** The product documents sit beside the repository (`../shared/seeds`), as in CI. */
const SEEDS = process.env.EDGE_SEEDS_DIR ?? path.resolve(import.meta.dirname, '../../../shared/seeds');
if (!existsSync(SEEDS)) throw new Error(`product documents not found at ${SEEDS} (set EDGE_SEEDS_DIR)`);

/**
 * The seeds are web pages turned to text: YAML blocks lost their indentation in places ("key : value" with no
 * nesting). Manifests that survived intact are found by their apiVersion line and a following indented block.
 */
function extractManifests(text: string): Array<{ source: string; doc: Record<string, unknown> }> {
  const out: Array<{ source: string; doc: Record<string, unknown> }> = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!/^apiVersion:\s*\S+/.test(lines[i]!)) continue;
    const block: string[] = [];
    for (let j = i; j < lines.length; j++) {
      const l = lines[j]!;
      if (j > i && /^\S/.test(l) && !/^(kind|metadata|spec|apiVersion):/.test(l)) break;
      if (j > i && /^apiVersion:/.test(l)) break;
      block.push(l);
    }
    try {
      for (const d of parseAllDocuments(block.join('\n'))) {
        const doc = d.toJSON() as Record<string, unknown>;
        if (doc && typeof doc === 'object') out.push({ source: block.join('\n'), doc });
      }
    } catch {
      // not YAML after all
    }
  }
  return out;
}

const manifests = readdirSync(SEEDS)
  .filter((f) => f.endsWith('.txt'))
  .flatMap((f) => extractManifests(readFileSync(path.join(SEEDS, f), 'utf8')).map((m) => ({ file: f, ...m })))
  // The reference doc's skeleton ("spec: # Workload specification fields") has no spec to check.
  .filter(
    (m) =>
      m.doc.kind === 'Workload' &&
      m.doc.spec !== null &&
      WORKLOAD_GROUPS.some((g) => String(m.doc.apiVersion).startsWith(`${g}/`)),
  );

describe('Workload examples of the docs', () => {
  it('finds the intact examples (reference doc and provider overview)', () => {
    const names = manifests.map((m) => (m.doc.metadata as { name: string }).name).sort();
    expect(names).toEqual(expect.arrayContaining(['web-app', 'api-server', 'app-with-sidecar', 'my-app']));
  });

  it.each(
    manifests.map((m) => [`${m.file}: ${(m.doc.metadata as { name: string }).name}`, m] as const),
  )('%s parses unchanged', (_name, m) => {
    const r = WorkloadSpec.safeParse(m.doc.spec);
    if (!r.success) throw new Error(formatIssues(r.error, 'spec'));
    expect(r.success).toBe(true);
  });

  it('parses the examples of the Workload guide (re-indented by hand, values unchanged)', () => {
    const guide = readFileSync(path.resolve(import.meta.dirname, '../../examples/web-app.yaml'), 'utf8');
    const doc = parseAllDocuments(guide)[0]!.toJSON();
    expect(WorkloadSpec.parse(doc.spec)).toMatchObject({
      replicas: 3,
      template: { spec: { machineType: 'e2-small', image: 'nginx:latest' } },
    });
  });

  const EXAMPLES = path.resolve(import.meta.dirname, '../../examples');
  const exampleFiles = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml'));
  it('has one file under examples/ per Workload example of the docs', () => {
    const names = exampleFiles.map(
      (f) =>
        (
          parseAllDocuments(readFileSync(path.join(EXAMPLES, f), 'utf8'))[0]!.toJSON() as {
            metadata: { name: string };
          }
        ).metadata.name,
    );
    expect(names.sort()).toEqual([
      'api-server',
      'app-with-sidecar',
      'backend-api',
      'my-app',
      'web-app',
      'web-app',
      'web-frontend',
      'worker',
    ]);
  });

  it.each(exampleFiles)('examples/%s parses, and its images are built locally', async (file) => {
    const { EXAMPLE_IMAGES } = await import('../../examples/images.js');
    const doc = parseAllDocuments(readFileSync(path.join(EXAMPLES, file), 'utf8'))[0]!.toJSON();
    const spec = WorkloadSpec.parse(doc.spec);
    const images = spec.template.spec.containers?.map((c) => c.image) ?? [spec.template.spec.image!];
    for (const image of images) expect(Object.keys(EXAMPLE_IMAGES)).toContain(image);
  });

  it('names the field of an invalid spec', () => {
    const r = WorkloadSpec.safeParse({
      replicas: -2,
      template: { spec: { image: 'x', env: [{ name: '1bad' }] } },
    });
    expect(r.success).toBe(false);
    const text = formatIssues(r.error!, 'spec');
    expect(text).toContain('spec.replicas');
    expect(text).toContain('spec.template.spec.env.0.name');
  });
});
