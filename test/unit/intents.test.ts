/** requestsFor: what a host must run, from its location's intents, including instances on older revisions. */
import { describe, expect, it } from 'vitest';
import { type HostIntent, requestsFor } from '../../agent/intents.js';
import { createLogger } from '../../shared/log.js';
import { testIntent } from '../harness/objects.js';

const log = createLogger({ name: 'test', level: 'silent' });
const MiB = 1024 * 1024;
const values = (v: string) => ({ env: { main: { V: v } }, files: {}, registryAuth: [] });

describe('requestsFor', () => {
  it('gives each instance on the host its intent, and nothing placed elsewhere', () => {
    const web = testIntent({ workload: 'web', hosts: ['h1', 'h2', 'h1'] });
    const api = testIntent({ workload: 'api', hosts: ['h2'] });
    const reqs = requestsFor('h1', [web, api], log);
    expect(reqs.map((r) => r.name)).toEqual(['web-loc-0', 'web-loc-2']);
    expect(reqs[0]).toEqual({
      namespace: 'ns',
      name: 'web-loc-0',
      workload: 'web',
      templateHash: web.templateHash,
      template: web.template,
      limits: web.limits,
      labels: {},
    });
  });

  it('runs an instance on the older revision its intent names, with that revision’s values', () => {
    const old = {
      templateHash: 'old',
      template: { image: 'nginx:1.25' },
      limits: { cpuMillis: 100, memoryBytes: 32 * MiB },
    };
    const intent: HostIntent = {
      ...testIntent({ workload: 'web', hosts: ['h1', 'h1'] }),
      revisions: [old],
      values: { ...values('new'), revisions: { old: values('old') } },
    };
    intent.instances[1]!.templateHash = 'old';
    const [current, older] = requestsFor('h1', [intent], log);
    expect(current).toMatchObject({ templateHash: intent.templateHash, template: intent.template });
    expect(current?.values?.env).toEqual({ main: { V: 'new' } });
    expect(older).toMatchObject({ templateHash: 'old', template: old.template, limits: old.limits });
    expect(older?.values?.env).toEqual({ main: { V: 'old' } });
  });

  it('runs the current template for a revision the intent does not carry', () => {
    const intent = testIntent({ workload: 'web', hosts: ['h1'] });
    intent.instances[0]!.templateHash = 'gone';
    expect(requestsFor('h1', [intent], log)[0]).toMatchObject({
      templateHash: intent.templateHash,
      template: intent.template,
    });
  });
});
