/**
 * A real Kubernetes API on 127.0.0.1: Debian's etcd plus the kube-apiserver that deploy/install.sh builds into the
 * cache, with token auth (an admin token in system:masters), RBAC, a kubeconfig, and CRDs applied with kubectl.
 * The aggregation layer is on: a front-proxy CA and client certificate (CN front-proxy-client) made with openssl,
 * and the --requestheader-* / --proxy-client-* flags, so APIServices (the coordinator's instances API) are served.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { freePort } from '../../shared/os.js';
import {
  EDGE_CACHE,
  freePorts,
  installSh,
  isAddrInUse,
  type Proc,
  portAccepts,
  run,
  startProc,
  stopPidFile,
  tail,
  waitFor,
} from './proc.js';

/** Path of the cached kube-apiserver binary (built by `deploy/install.sh kube-apiserver`). */
export const KUBE_APISERVER_BIN = path.join(EDGE_CACHE, 'bin', 'kube-apiserver');

/** Options of {@link startKubeApi}. */
export interface KubeApiOptions {
  /** Working directory: etcd data, certificates, token file, kubeconfig, logs; created if missing. */
  dir: string;
  /** Directory whose YAML/JSON files (CRDs) are applied with kubectl; each CRD is waited for until Established. */
  crdDir?: string;
  /** Start etcd and kube-apiserver detached (they outlive this process; pid files in `dir`). */
  detached?: boolean;
  /** kube-apiserver log file (default `<dir>/kube-apiserver.log`). */
  logFile?: string;
  /** etcd log file (default `<dir>/etcd.log`). */
  etcdLogFile?: string;
  /** How long to wait for /readyz (default 120 s). */
  readyTimeoutMs?: number;
  /** Extra kube-apiserver flags (`--name=value`). */
  extraArgs?: string[];
}

/** A running etcd + kube-apiserver. */
export interface KubeApiHandle {
  /** kubeconfig (token auth, the generated CA) at `<dir>/kubeconfig`. */
  readonly kubeconfigPath: string;
  /** API server URL, e.g. `https://127.0.0.1:6443`. */
  readonly server: string;
  /** Bearer token of the admin user (group system:masters). */
  readonly token: string;
  /** PEM of the CA that signed the serving certificate (also in the kubeconfig). */
  readonly caPem: string;
  /** etcd client URL, e.g. `http://127.0.0.1:2379`. */
  readonly etcdUrl: string;
  /** Working directory. */
  readonly dir: string;
  /** kube-apiserver pid. */
  readonly pid: number;
  /** etcd pid. */
  readonly etcdPid: number;
  /** Stops kube-apiserver, then etcd (SIGTERM, SIGKILL after a timeout); idempotent. */
  stop(): Promise<void>;
}

/** Result of {@link kubectl}. */
export interface KubectlResult {
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
  /** Exit code. */
  code: number;
}

/** Runs the real kubectl against a kubeconfig. Never throws on a non-zero exit: check `code`. */
export function kubectl(
  kubeconfigPath: string,
  args: string[],
  opts: {
    /** Standard input (e.g. YAML for `apply -f -`). */
    input?: string;
    /** Kill kubectl after this long (default 60 s). */
    timeoutMs?: number;
  } = {},
): Promise<KubectlResult> {
  return run('kubectl', ['--kubeconfig', kubeconfigPath, ...args], {
    input: opts.input,
    timeoutMs: opts.timeoutMs ?? 60_000,
  });
}

/** Makes sure the kube-apiserver binary is built (runs `deploy/install.sh kube-apiserver` when it is missing). */
export async function ensureKubeApiServer(): Promise<string> {
  if (!fs.existsSync(KUBE_APISERVER_BIN)) await installSh(['kube-apiserver']);
  return KUBE_APISERVER_BIN;
}

/** Starts etcd and kube-apiserver, waits for /readyz, writes the kubeconfig and applies `crdDir`. */
export async function startKubeApi(opts: KubeApiOptions): Promise<KubeApiHandle> {
  const bin = await ensureKubeApiServer();
  const dir = path.resolve(opts.dir);
  fs.mkdirSync(dir, { recursive: true });
  const etcd = await startEtcd(dir, opts);
  let api: { proc: Proc; port: number } | undefined;
  try {
    const token = crypto.randomBytes(24).toString('hex');
    fs.writeFileSync(path.join(dir, 'tokens.csv'), `${token},admin,admin,"system:masters"\n`, {
      mode: 0o600,
    });
    const frontProxy = frontProxyCerts(path.join(dir, 'front-proxy'));
    const saKey = path.join(dir, 'sa.key');
    if (!fs.existsSync(saKey)) {
      const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
      fs.writeFileSync(saKey, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    }
    for (let attempt = 1; !api; attempt++) {
      const port = await freePort();
      const proc = startProc({
        name: 'kube-apiserver',
        command: bin,
        dir,
        detached: opts.detached,
        logFile: opts.logFile,
        args: [
          `--etcd-servers=${etcd.url}`,
          '--bind-address=127.0.0.1',
          '--advertise-address=127.0.0.1',
          `--secure-port=${port}`,
          `--cert-dir=${path.join(dir, 'certs')}`,
          `--token-auth-file=${path.join(dir, 'tokens.csv')}`,
          '--authorization-mode=RBAC',
          `--service-account-key-file=${saKey}`,
          `--service-account-signing-key-file=${saKey}`,
          '--service-account-issuer=https://kubernetes.default.svc',
          '--service-cluster-ip-range=10.96.0.0/24',
          // No kubelets, no traffic: skip what only matters in a real cluster.
          '--endpoint-reconciler-type=none',
          '--enable-priority-and-fairness=false',
          '--profiling=false',
          // The aggregation layer (APIServices): kube-apiserver calls them with this client certificate and
          // passes the user in these headers. Aggregator routing stays off: it dials an Endpoints address, and
          // Endpoints refuse loopback addresses, so on loopback an APIService is reached through an ExternalName
          // Service (its name, then the APIService's port).
          `--requestheader-client-ca-file=${frontProxy.ca}`,
          '--requestheader-allowed-names=front-proxy-client',
          '--requestheader-username-headers=X-Remote-User',
          '--requestheader-group-headers=X-Remote-Group',
          '--requestheader-extra-headers-prefix=X-Remote-Extra-',
          `--proxy-client-cert-file=${frontProxy.cert}`,
          `--proxy-client-key-file=${frontProxy.key}`,
          '--v=1',
          ...(opts.extraArgs ?? []),
        ],
      });
      try {
        await waitFor(
          `kube-apiserver /readyz on 127.0.0.1:${port}`,
          async () => {
            if (!(await portAccepts(port))) return false;
            const r = await httpsGetInsecure(`https://127.0.0.1:${port}/readyz`, token);
            return r.status === 200 && r.body.trim() === 'ok';
          },
          {
            timeoutMs: opts.readyTimeoutMs ?? 120_000,
            intervalMs: 250,
            abort: () =>
              proc.exit
                ? `kube-apiserver exited (${proc.exit.code ?? proc.exit.signal}):\n${tail(proc.logFile)}`
                : undefined,
          },
        );
        api = { proc, port };
      } catch (e) {
        await proc.stop(2000);
        if (attempt >= 3 || !isAddrInUse(tail(proc.logFile, 10))) throw e;
      }
    }
    const server = `https://127.0.0.1:${api.port}`;
    const caPem = fs.readFileSync(path.join(dir, 'certs', 'apiserver.crt'), 'utf8');
    const kubeconfigPath = path.join(dir, 'kubeconfig');
    fs.writeFileSync(kubeconfigPath, kubeconfigYaml(server, token, caPem), { mode: 0o600 });
    if (opts.crdDir) await applyCrds(kubeconfigPath, opts.crdDir);
    const apiProc = api.proc;
    let stopping: Promise<void> | undefined;
    return {
      kubeconfigPath,
      server,
      token,
      caPem,
      etcdUrl: etcd.url,
      dir,
      pid: apiProc.pid,
      etcdPid: etcd.proc.pid,
      stop: () => {
        stopping ??= (async () => {
          await apiProc.stop(15_000);
          await etcd.proc.stop(10_000);
        })();
        return stopping;
      },
    };
  } catch (e) {
    await api?.proc.stop(2000);
    await etcd.proc.stop(2000);
    throw e;
  }
}

async function startEtcd(dir: string, opts: KubeApiOptions): Promise<{ proc: Proc; url: string }> {
  for (let attempt = 1; ; attempt++) {
    const [client, peer] = await freePorts(2);
    const url = `http://127.0.0.1:${client}`;
    const peerUrl = `http://127.0.0.1:${peer}`;
    const proc = startProc({
      name: 'etcd',
      command: 'etcd',
      dir,
      detached: opts.detached,
      logFile: opts.etcdLogFile,
      args: [
        '--name=edgeplane',
        `--data-dir=${path.join(dir, 'etcd')}`,
        `--listen-client-urls=${url}`,
        `--advertise-client-urls=${url}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=edgeplane=${peerUrl}`,
        '--initial-cluster-state=new',
        '--logger=zap',
        '--log-level=warn',
      ],
    });
    try {
      await waitFor(
        `etcd on ${url}`,
        async () => {
          const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
          return r.ok && ((await r.json()) as { health?: string }).health === 'true';
        },
        {
          timeoutMs: 30_000,
          abort: () =>
            proc.exit
              ? `etcd exited (${proc.exit.code ?? proc.exit.signal}):\n${tail(proc.logFile)}`
              : undefined,
        },
      );
      return { proc, url };
    } catch (e) {
      await proc.stop(2000);
      if (attempt >= 3 || !isAddrInUse(tail(proc.logFile, 10))) throw e;
    }
  }
}

/** GET over TLS without verifying the (not yet known) serving certificate; loopback only. */
function httpsGetInsecure(url: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      url,
      { rejectUnauthorized: false, headers: { Authorization: `Bearer ${token}` }, timeout: 2000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** A kubeconfig for `server` (trusting `caPem`) that authenticates with a bearer token as `user` (a label only). */
export function kubeconfigYaml(server: string, token: string, caPem: string, user = 'admin'): string {
  const ca = Buffer.from(caPem).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: edgeplane-test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${ca}`,
    'users:',
    `- name: ${user}`,
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: edgeplane-test',
    '  context:',
    '    cluster: edgeplane-test',
    `    user: ${user}`,
    '    namespace: default',
    'current-context: edgeplane-test',
    '',
  ].join('\n');
}

/** Applies every file of `crdDir` with `kubectl apply -f` and waits until each CRD in it is Established. */
export async function applyCrds(
  kubeconfigPath: string,
  crdDir: string,
  timeoutMs = 60_000,
): Promise<string[]> {
  const applied = await kubectl(kubeconfigPath, ['apply', '-f', crdDir, '-o', 'name']);
  if (applied.code !== 0) throw new Error(`kubectl apply -f ${crdDir} failed:\n${applied.stderr}`);
  const crds = applied.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('customresourcedefinition.'));
  if (crds.length) {
    const w = await kubectl(
      kubeconfigPath,
      ['wait', '--for=condition=Established', `--timeout=${Math.ceil(timeoutMs / 1000)}s`, ...crds],
      { timeoutMs: timeoutMs + 10_000 },
    );
    if (w.code !== 0) throw new Error(`CRDs not Established:\n${w.stderr}${w.stdout}`);
  }
  return crds;
}

/** Stops a detached etcd + kube-apiserver started earlier (possibly by another process) in `dir`. */
export async function stopKubeApiIn(dir: string): Promise<void> {
  await stopPidFile(path.join(dir, 'kube-apiserver.pid'), { expect: 'kube-apiserver', timeoutMs: 15_000 });
  await stopPidFile(path.join(dir, 'etcd.pid'), { expect: 'etcd' });
}

/**
 * The front proxy's CA and client certificate (CN front-proxy-client, clientAuth), made once per directory with
 * openssl; valid ten years.
 */
export function frontProxyCerts(dir: string): { ca: string; cert: string; key: string } {
  const f = (n: string) => path.join(dir, n);
  const out = {
    ca: f('front-proxy-ca.crt'),
    cert: f('front-proxy-client.crt'),
    key: f('front-proxy-client.key'),
  };
  if (fs.existsSync(out.cert)) return out;
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '3650',
    '-subj',
    '/CN=front-proxy-ca',
    '-keyout',
    f('front-proxy-ca.key'),
    '-out',
    out.ca,
  );
  ssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=front-proxy-client',
    '-keyout',
    out.key,
    '-out',
    f('client.csr'),
  );
  fs.writeFileSync(f('client.cnf'), 'extendedKeyUsage=clientAuth\n');
  ssl(
    'x509',
    '-req',
    '-in',
    f('client.csr'),
    '-CA',
    out.ca,
    '-CAkey',
    f('front-proxy-ca.key'),
    '-CAcreateserial',
    '-days',
    '3650',
    '-extfile',
    f('client.cnf'),
    '-out',
    out.cert,
  );
  return out;
}
