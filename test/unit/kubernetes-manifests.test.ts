/**
 * deploy/kubernetes renders with kubectl's own kustomize, includes every generated CRD, grants no wildcard and
 * wires the Deployment as the coordinator expects (probes on the HTTP port, Lease namespace, NATS Secret, image).
 * test/e2e/rbac.test.ts applies the same manifests to a real API server.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  COORDINATOR_HTTP_PORT,
  coordinatorImageTag,
  imageChanges,
  parseLdd,
} from '../../deploy/image/coordinator.js';
import { CONVERSION_SERVICE, KINDS } from '../../shared/api/kinds.js';
import { generatedFiles } from '../../shared/gen/files.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are untyped YAML
type Obj = any;

const rendered: Obj[] = parseAllDocuments(
  execFileSync('kubectl', ['kustomize', path.join(ROOT, 'deploy/kubernetes')], { encoding: 'utf8' }),
).map((d) => d.toJS());
const all = (kind: string) => rendered.filter((o) => o.kind === kind);
const one = (kind: string, name?: string) => {
  const found = all(kind).filter((o) => !name || o.metadata.name === name);
  expect(found, `${kind} ${name ?? ''}`).toHaveLength(1);
  return found[0];
};

describe('deploy/kubernetes', () => {
  it('includes every CRD `npm run gen` writes', () => {
    const generated = [...generatedFiles()]
      .filter(([file]) => file.startsWith('deploy/crds/') && file.endsWith('.yaml'))
      .map(([, text]) => parseAllDocuments(text)[0]!.toJS().metadata.name)
      .sort();
    expect(generated.length).toBeGreaterThan(0);
    expect(
      all('CustomResourceDefinition')
        .map((c) => c.metadata.name)
        .sort(),
    ).toEqual(generated);
  });

  it('puts everything namespaced into edgeplane-system', () => {
    expect(one('Namespace').metadata.name).toBe('edgeplane-system');
    const clusterScoped = ['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding'];
    for (const o of rendered.filter((o) => !clusterScoped.includes(o.kind)))
      expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe('edgeplane-system');
  });

  describe('RBAC', () => {
    const rules = [...all('ClusterRole'), ...all('Role')].flatMap((r) =>
      r.rules.map((rule: Obj) => ({ ...rule, role: `${r.kind}/${r.metadata.name}` })),
    );

    it('has no wildcard verbs on wildcard resources (nor any wildcard at all)', () => {
      for (const rule of rules) {
        expect(rule.verbs.includes('*') && rule.resources.includes('*'), JSON.stringify(rule)).toBe(false);
        for (const field of ['verbs', 'resources', 'apiGroups'])
          expect(rule[field], `${rule.role} ${field}`).not.toContain('*');
      }
    });

    it('names only resources the API serves (Edgeplane kinds and their subresources, core, leases)', () => {
      const known = new Set<string>([
        '/secrets',
        '/configmaps',
        '/resourcequotas',
        '/events',
        '/namespaces',
        'coordination.k8s.io/leases',
        'apiextensions.k8s.io/customresourcedefinitions',
      ]);
      for (const kind of KINDS)
        for (const group of kind.groups)
          for (const sub of ['', '/status', '/finalizers']) known.add(`${group}/${kind.plural}${sub}`);
      for (const rule of rules)
        for (const group of rule.apiGroups)
          for (const resource of rule.resources)
            expect(known, `${rule.role}: ${group}/${resource}`).toContain(`${group}/${resource}`);
    });

    it('writes status of every Edgeplane kind, and reads Secrets and ConfigMaps without get-by-default wildcards', () => {
      const can = (group: string, resource: string, verb: string) =>
        rules.some(
          (r) =>
            r.apiGroups.includes(group) &&
            r.resources.includes(resource) &&
            r.verbs.includes(verb) &&
            !r.resourceNames,
        );
      for (const kind of KINDS)
        for (const group of kind.groups) expect(can(group, `${kind.plural}/status`, 'patch')).toBe(true);
      for (const resource of ['secrets', 'configmaps']) {
        expect(can('', resource, 'list') && can('', resource, 'watch')).toBe(true);
        expect(can('', resource, 'patch') || can('', resource, 'delete')).toBe(false);
      }
      // Creating Secrets only in its own namespace (the webhook's certificate), never cluster-wide.
      const clusterWide = all('ClusterRole').flatMap((r) => r.rules);
      expect(
        clusterWide.some((r: Obj) => r.resources.includes('secrets') && r.verbs.includes('create')),
      ).toBe(false);
    });

    it('patches only the CRDs that serve v1alpha, and reads only the webhook certificate Secret', () => {
      const crdRule = all('ClusterRole')
        .flatMap((r) => r.rules)
        .find((r: Obj) => r.resources.includes('customresourcedefinitions'));
      expect(crdRule).toEqual({
        apiGroups: ['apiextensions.k8s.io'],
        resources: ['customresourcedefinitions'],
        resourceNames: ['workloads.compute.datumapis.com', 'workloaddeployments.compute.datumapis.com'],
        verbs: ['get', 'patch'],
      });
      const role = one('Role', 'edge-coordinator-webhook-cert');
      expect(role.rules).toEqual([
        { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
        {
          apiGroups: [''],
          resources: ['secrets'],
          resourceNames: ['edge-coordinator-webhook-tls'],
          verbs: ['get'],
        },
      ]);
      expect(one('RoleBinding', 'edge-coordinator-webhook-cert').roleRef.name).toBe(role.metadata.name);
    });

    it('limits the Lease to its own namespace and name, and binds both roles to the ServiceAccount', () => {
      const role = one('Role', 'edge-coordinator-leader-election');
      expect(role.metadata.namespace).toBe('edgeplane-system');
      expect(role.rules.every((r: Obj) => r.apiGroups.join() === 'coordination.k8s.io')).toBe(true);
      const byName = role.rules.find((r: Obj) => r.resourceNames);
      expect(byName).toMatchObject({ resourceNames: ['edge-coordinator'], verbs: ['get', 'update'] });
      const sa = one('ServiceAccount');
      for (const binding of [one('ClusterRoleBinding'), ...all('RoleBinding')]) {
        expect(binding.subjects).toEqual([
          { kind: 'ServiceAccount', name: sa.metadata.name, namespace: 'edgeplane-system' },
        ]);
      }
      expect(one('ClusterRoleBinding').roleRef.name).toBe(one('ClusterRole').metadata.name);
      expect(one('RoleBinding', 'edge-coordinator-leader-election').roleRef.name).toBe(role.metadata.name);
    });
  });

  describe('Deployment', () => {
    const dep = one('Deployment', 'edge-coordinator');
    const pod = dep.spec.template.spec;
    const c = pod.containers[0];
    const env = (name: string) => c.env.find((e: Obj) => e.name === name);

    it('runs two replicas of the image `npm run image` builds, as the ServiceAccount, not as root', () => {
      expect(dep.spec.replicas).toBe(2);
      expect(c.image).toBe(coordinatorImageTag());
      expect(pod.serviceAccountName).toBe(one('ServiceAccount').metadata.name);
      expect(pod.securityContext.runAsNonRoot).toBe(true);
      expect(c.securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
      });
    });

    it('probes /healthz and /readyz on the HTTP port', () => {
      const port = c.ports.find((p: Obj) => p.name === c.livenessProbe.httpGet.port);
      expect(port.containerPort).toBe(COORDINATOR_HTTP_PORT);
      expect(c.livenessProbe.httpGet.path).toBe('/healthz');
      expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: c.livenessProbe.httpGet.port });
      expect(c.args).toContain(`--metrics-address=0.0.0.0:${COORDINATOR_HTTP_PORT}`);
    });

    it('serves the conversion webhook behind the Service the CRDs name', () => {
      expect(c.args).toContain('--webhook-address=0.0.0.0:9443');
      expect(c.args).toContain('--webhook-cert-secret=$(POD_NAMESPACE)/edge-coordinator-webhook-tls');
      const svc = one('Service', 'edge-coordinator-webhook');
      const port = c.ports.find((p: Obj) => p.name === svc.spec.ports[0].targetPort);
      expect(port.containerPort).toBe(9443);
      expect(svc.spec.ports[0].port).toBe(443);
      expect(svc.spec.selector).toEqual(dep.spec.selector.matchLabels);
      // The coordinator writes this Service into the CRDs (the files carry no conversion block).
      expect(CONVERSION_SERVICE).toEqual({
        namespace: svc.metadata.namespace,
        name: svc.metadata.name,
        path: '/convert',
        port: 443,
      });
    });

    it('elects its leader on a Lease in its own namespace', () => {
      expect(c.args).toContain('--lease-namespace=$(POD_NAMESPACE)');
      expect(env('POD_NAMESPACE').valueFrom.fieldRef.fieldPath).toBe('metadata.namespace');
      expect(dep.metadata.namespace).toBe('edgeplane-system');
      expect(c.args).not.toContain('--no-leader-elect');
    });

    it('reads its NATS credentials from the Secret and its settings from the generated ConfigMap', () => {
      const secret = one('Secret');
      const volume = pod.volumes.find((v: Obj) => v.secret?.secretName === secret.metadata.name);
      const mount = c.volumeMounts.find((m: Obj) => m.name === volume.name);
      expect(env('EDGE_NATS_CREDS').value).toBe(`${mount.mountPath}/nats.creds`);
      const config = one('ConfigMap');
      expect(c.envFrom).toEqual([{ configMapRef: { name: config.metadata.name } }]);
      expect(config.data.EDGE_NATS_CA).toBe(`${mount.mountPath}/ca.crt`);
      expect(Object.keys(config.data).every((k) => k.startsWith('EDGE_'))).toBe(true);
    });
  });
});

describe('the coordinator image', () => {
  it('copies what ldd lists, the loader included, and refuses a missing library', () => {
    const out = [
      '\tlinux-vdso.so.1 (0x00007ffd)',
      '\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f96)',
      '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f96)',
      '\t/lib64/ld-linux-x86-64.so.2 (0x00007f96)',
    ].join('\n');
    expect(parseLdd(out)).toEqual([
      '/lib/x86_64-linux-gnu/libdl.so.2',
      '/lib/x86_64-linux-gnu/libc.so.6',
      '/lib64/ld-linux-x86-64.so.2',
    ]);
    expect(() => parseLdd('\tlibfoo.so.1 => not found\n')).toThrow(/libfoo\.so\.1 not found/);
  });

  it('runs the bundle with Node as the non-root user, logging JSON', () => {
    const changes = imageChanges('1.2.3');
    expect(changes[0]).toMatch(/^ENTRYPOINT \["\/usr\/local\/bin\/node", "\/app\/edge-coordinator\.mjs"\]$/);
    expect(changes).toContain('USER 65532:65532');
    expect(changes).toContain('ENV LOG_FORMAT=json');
    expect(changes).toContain(`EXPOSE ${COORDINATOR_HTTP_PORT}`);
    expect(changes.some((c) => c.includes('org.opencontainers.image.version="1.2.3"'))).toBe(true);
  });
});
