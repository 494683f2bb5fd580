/**
 * Docker as a very small kubelet, for one container of a Deployment read back from a real API server: its args
 * ($(VAR) expanded), env (value, the namespace fieldRef, envFrom ConfigMaps), Secret volumes written as files,
 * the ServiceAccount token, CA and namespace at /var/run/secrets/kubernetes.io/serviceaccount with
 * KUBERNETES_SERVICE_HOST/PORT pointing at the API server, and the Pod's and container's user, read-only root and
 * dropped capabilities. Host networking, because the test API server listens on 127.0.0.1 only.
 */
import fs from 'node:fs';
import path from 'node:path';
import { docker, type KubeApiHandle, kubectl } from '../../deploy/stack/index.js';
import { cleanup } from './index.js';

// biome-ignore lint/suspicious/noExplicitAny: objects read back from the API server are untyped JSON
type Obj = any;

/** Options of {@link runDeploymentContainer}. */
export interface PodContainerOptions {
  kube: KubeApiHandle;
  namespace: string;
  deployment: string;
  /** Image to run instead of the Deployment's (as a kustomize `images:` override would). */
  image: string;
  /** Environment to set over the Deployment's; an empty value removes a variable. */
  envOverrides?: Record<string, string>;
  /** Arguments appended to the Deployment's. */
  extraArgs?: string[];
  /** Working directory for the mounted files. */
  dir: string;
  /** Label put on the container (removed with it after the test file). */
  label: string;
}

async function get(kube: KubeApiHandle, args: string[]): Promise<Obj> {
  const r = await kubectl(kube.kubeconfigPath, ['get', ...args, '-o', 'json']);
  if (r.code !== 0) throw new Error(`kubectl get ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Starts the Deployment's first container detached; resolves to the container id. */
export async function runDeploymentContainer(o: PodContainerOptions): Promise<string> {
  const dep = await get(o.kube, ['-n', o.namespace, 'deployment', o.deployment]);
  const pod = dep.spec.template.spec;
  const c = pod.containers[0];
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? [])
    Object.assign(env, (await get(o.kube, ['-n', o.namespace, 'configmap', from.configMapRef.name])).data);
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = o.namespace;
    else throw new Error(`env ${e.name}: only value and the namespace fieldRef are supported here`);
  }
  const port = new URL(o.kube.server).port;
  Object.assign(env, { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: port }, o.envOverrides);
  const user = `${c.securityContext?.runAsUser ?? pod.securityContext?.runAsUser ?? 0}`;
  const group = `${c.securityContext?.runAsGroup ?? pod.securityContext?.runAsGroup ?? user}`;

  // Files as the kubelet would mount them: owned by the Pod's fsGroup (here: its user), read-only.
  const volumes: string[] = [];
  const mount = (name: string, files: Record<string, string | Buffer>, target: string) => {
    const d = path.join(o.dir, name);
    fs.mkdirSync(d, { recursive: true, mode: 0o755 });
    for (const [f, content] of Object.entries(files)) {
      fs.writeFileSync(path.join(d, f), content, { mode: 0o440 });
      fs.chownSync(path.join(d, f), Number(user), Number(group));
    }
    volumes.push('-v', `${d}:${target}:ro`);
  };
  for (const m of c.volumeMounts ?? []) {
    const v = pod.volumes.find((x: Obj) => x.name === m.name);
    if (!v?.secret) throw new Error(`volume ${m.name}: only Secret volumes are supported here`);
    const secret = await get(o.kube, ['-n', o.namespace, 'secret', v.secret.secretName]);
    const files = Object.fromEntries(
      Object.entries(secret.data ?? {}).map(([k, b64]) => [k, Buffer.from(String(b64), 'base64')]),
    );
    mount(m.name, files, m.mountPath);
  }
  const tokenRun = await kubectl(o.kube.kubeconfigPath, [
    '-n',
    o.namespace,
    'create',
    'token',
    pod.serviceAccountName,
    '--duration=1h',
  ]);
  if (tokenRun.code !== 0) throw new Error(`kubectl create token: ${tokenRun.stderr}`);
  mount(
    'serviceaccount',
    { token: tokenRun.stdout.trim(), 'ca.crt': o.kube.caPem, namespace: o.namespace },
    '/var/run/secrets/kubernetes.io/serviceaccount',
  );

  const expand = (a: string) => a.replace(/\$\((\w+)\)/g, (all, k: string) => env[k] ?? all);
  const args = [
    'run',
    '-d',
    '--label',
    o.label,
    '--network',
    'host',
    '--user',
    `${user}:${group}`,
    ...(c.securityContext?.readOnlyRootFilesystem ? ['--read-only'] : []),
    ...(c.securityContext?.capabilities?.drop?.includes('ALL') ? ['--cap-drop', 'ALL'] : []),
    ...(c.securityContext?.allowPrivilegeEscalation === false ? ['--security-opt', 'no-new-privileges'] : []),
    ...Object.entries(env)
      .filter(([, v]) => v !== '')
      .flatMap(([k, v]) => ['-e', `${k}=${v}`]),
    ...volumes,
    o.image,
    ...(c.args ?? []).map(expand),
    ...(o.extraArgs ?? []),
  ];
  const r = await docker(args);
  if (r.code !== 0) throw new Error(`docker run: ${r.stderr}`);
  const id = r.stdout.trim();
  cleanup(() => docker(['rm', '-f', id]));
  return id;
}
