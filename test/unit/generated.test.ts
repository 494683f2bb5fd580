/** CRDs and the API reference are generated from the zod schemas; a stale checked-in copy fails here. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { generatedFiles } from '../../shared/gen/files.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

describe('generated files', () => {
  const files = generatedFiles();

  it.each([...files.keys()])('%s is up to date (run `npm run gen`)', (file) => {
    expect(readFileSync(path.join(ROOT, file), 'utf8')).toBe(files.get(file));
  });

  it('serves Workload in all three API groups of the docs, with scale and status subresources', () => {
    const groups = [...files.keys()].filter((f) => f.endsWith('_workloads.yaml'));
    expect(groups.sort()).toEqual([
      'deploy/crds/compute.datumapis.com_workloads.yaml',
      'deploy/crds/compute.miloapis.com_workloads.yaml',
      'deploy/crds/workload.datum.net_workloads.yaml',
    ]);
    const crd = parse(files.get('deploy/crds/compute.datumapis.com_workloads.yaml')!);
    const v = crd.spec.versions[0];
    expect(v.subresources.scale.specReplicasPath).toBe('.spec.replicas');
    expect(v.subresources.status).toEqual({});
    expect(v.additionalPrinterColumns.map((c: { name: string }) => c.name)).toEqual([
      'Replicas',
      'Ready',
      'Phase',
      'Age',
    ]);
  });

  it('describes every field (kubectl explain needs it)', () => {
    const missing: string[] = [];
    const walk = (node: Record<string, unknown>, at: string) => {
      const props = node.properties as Record<string, Record<string, unknown>> | undefined;
      for (const [k, child] of Object.entries(props ?? {})) {
        if (!child.description && !['apiVersion', 'kind', 'metadata'].includes(k)) missing.push(`${at}.${k}`);
        walk(child, `${at}.${k}`);
        if (child.items) walk(child.items as Record<string, unknown>, `${at}.${k}[]`);
      }
    };
    for (const [file, text] of files) {
      if (!file.endsWith('.yaml')) continue;
      walk(parse(text).spec.versions[0].schema.openAPIV3Schema, file);
    }
    expect(missing).toEqual([]);
  });
});
