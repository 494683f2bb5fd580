/** Resolution of Secret, ConfigMap and Network references of a Workload template (pure). */
import { describe, expect, it } from 'vitest';
import {
  type ReferenceLookup,
  registryAuthOf,
  resolveReferences,
} from '../../coordinator/workloads/references.js';
import type { NetworkSpec, WorkloadSpec } from '../../shared/api/index.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

function lookup(objs: {
  secrets?: Record<string, Record<string, string>>;
  configMaps?: Record<string, Record<string, string>>;
  networks?: Record<string, NetworkSpec>;
}): ReferenceLookup {
  return {
    secret: (n) => (objs.secrets?.[n] ? { data: objs.secrets[n]! } : undefined),
    configMap: (n) => objs.configMaps?.[n],
    network: (n) => objs.networks?.[n],
  };
}

/** The env and volumes of the guide's advanced example, plus a configMap volume and a pull secret. */
const spec: Pick<WorkloadSpec, 'template' | 'networkRef'> = {
  template: {
    spec: {
      image: 'gcr.io/my-project/backend-api:v2.1',
      imagePullSecrets: [{ name: 'gcr-credentials' }],
      env: [
        { name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'db-credentials', key: 'url' } } },
        { name: 'LOG_LEVEL', value: 'info' },
      ],
      volumes: [
        { name: 'config', configMap: { name: 'app-config' } },
        {
          name: 'secrets',
          secret: { secretName: 'app-secrets', items: [{ key: 'token', path: 'auth/token' }] },
        },
      ],
      networkInterfaces: [{ networkRef: { name: 'backend-network' }, subnetRef: { name: 'backend-subnet' } }],
    },
  },
};

describe('resolveReferences', () => {
  it('names every missing object, and nothing else', () => {
    const r = resolveReferences(spec, lookup({}));
    expect(r.missing).toEqual([
      'ConfigMap app-config',
      'Network backend-network',
      'Secret app-secrets',
      'Secret db-credentials',
      'Secret gcr-credentials',
    ]);
    expect([...r.referenced.secrets].sort()).toEqual(['app-secrets', 'db-credentials', 'gcr-credentials']);
  });

  it('names a missing key and a missing subnet', () => {
    const r = resolveReferences(
      spec,
      lookup({
        secrets: { 'db-credentials': { user: b64('u') }, 'app-secrets': {}, 'gcr-credentials': {} },
        configMaps: { 'app-config': {} },
        networks: { 'backend-network': { subnets: [{ name: 'other' }] } },
      }),
    );
    expect(r.missing).toEqual([
      'key token of Secret app-secrets',
      'key url of Secret db-credentials',
      'subnet backend-subnet of Network backend-network',
    ]);
  });

  it('resolves env values, files and registry credentials when everything exists', () => {
    const dockerconfig = b64(JSON.stringify({ auths: { 'gcr.io': { auth: b64('_json_key:secret') } } }));
    const r = resolveReferences(
      spec,
      lookup({
        secrets: {
          'db-credentials': { url: b64('postgres://db/x') },
          'app-secrets': { token: b64('t0k'), other: b64('x') },
          'gcr-credentials': { '.dockerconfigjson': dockerconfig },
        },
        configMaps: { 'app-config': { 'config.yaml': b64('a: 1') } },
        networks: { 'backend-network': { subnets: [{ name: 'backend-subnet' }] } },
      }),
    );
    expect(r.missing).toEqual([]);
    expect(r.values.env).toEqual({ main: { DATABASE_URL: 'postgres://db/x' } });
    expect(r.values.files).toEqual({
      config: { 'config.yaml': b64('a: 1') },
      secrets: { 'auth/token': b64('t0k') },
    });
    expect(r.values.registryAuth).toEqual([{ server: 'gcr.io', username: '_json_key', password: 'secret' }]);
  });

  it('keys env values by container name in the pod-style form, and skips optional references', () => {
    const r = resolveReferences(
      {
        networkRef: { name: 'prod-network' },
        template: {
          spec: {
            containers: [
              {
                name: 'api',
                image: 'myregistry/api:v1.0',
                env: [
                  { name: 'A', valueFrom: { configMapKeyRef: { name: 'cm', key: 'a' } } },
                  { name: 'B', valueFrom: { secretKeyRef: { name: 'nope', key: 'b', optional: true } } },
                ],
              },
            ],
          },
        },
      },
      lookup({ configMaps: { cm: { a: b64('1') } }, networks: { 'prod-network': {} } }),
    );
    expect(r.missing).toEqual([]);
    expect(r.values.env).toEqual({ api: { A: '1' } });
  });

  it('reads username/password entries and ignores unreadable docker configs', () => {
    expect(
      registryAuthOf({
        '.dockerconfigjson': b64(JSON.stringify({ auths: { r: { username: 'u', password: 'p' } } })),
      }),
    ).toEqual([{ server: 'r', username: 'u', password: 'p' }]);
    expect(registryAuthOf({ '.dockerconfigjson': b64('not json') })).toEqual([]);
    expect(registryAuthOf({})).toEqual([]);
  });
});
