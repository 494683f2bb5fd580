/**
 * Network tests' probes, inside namespaces the test created (deploy/stack/netns.ts): TCP servers that answer
 * with who they are, a TCP client, ping. The servers are Node processes run with `nsenter --net=`, stopped by
 * {@link cleanup}; namespaces made with {@link useStandInHosts} / {@link instanceNetns} are deleted after the file.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import {
  createNetns,
  createStandInHosts,
  type Netns,
  removeNetnsWithPrefix,
  runIn,
  type StandInHosts,
  waitFor,
} from '../../deploy/stack/index.js';
import { cleanup } from './index.js';

/** A unique namespace prefix for this test file; every namespace with it is deleted after the file. */
export function netnsPrefix(tag: string): string {
  const prefix = `ept${tag}${crypto.randomBytes(2).toString('hex')}-`;
  cleanup(() => removeNetnsWithPrefix(prefix));
  return prefix;
}

/** Stand-in hosts under `prefix` (deleted after the file with everything in them). */
export function useStandInHosts(prefix: string, count: number, mtu?: number): StandInHosts {
  return createStandInHosts(prefix, count, mtu);
}

/** A namespace standing for an instance. */
export const instanceNetns = (prefix: string, name: string): Netns => createNetns(`${prefix}${name}`);

const SERVER = `
const net = require('node:net');
const [identity, ...ports] = process.argv.slice(1);
let listening = 0;
for (const port of ports) {
  net.createServer((s) => { s.on('error', () => {}); s.end(identity + '\\n'); })
    .listen(Number(port), '0.0.0.0', () => { if (++listening === ports.length) console.log('ready'); });
}`;

/** TCP servers on `ports` in `ns` answering every connection with `identity`; stopped after the test/file. */
export async function startTcpServers(ns: Netns, identity: string, ports: number[]): Promise<void> {
  const child: ChildProcess = spawn(
    'nsenter',
    [`--net=${ns.path}`, process.execPath, '-e', SERVER, identity, ...ports.map(String)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  cleanup(() => {
    child.kill('SIGKILL');
  });
  let out = '';
  child.stdout?.on('data', (b: Buffer) => {
    out += b.toString();
  });
  await waitFor(`servers ${identity} in ${ns.name}`, () => out.includes('ready'), {
    timeoutMs: 60_000,
    abort: () => (child.exitCode !== null ? `exited ${child.exitCode}` : undefined),
  });
}

const CLIENT = `
const net = require('node:net');
const [host, port, timeout, localAddress] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port), ...(localAddress ? { localAddress } : {}) });
let data = '';
s.setTimeout(Number(timeout), () => { console.log('ERR timeout'); process.exit(0); });
s.on('data', (b) => { data += b; });
s.on('end', () => { console.log('OK ' + data.trim()); process.exit(0); });
s.on('error', (e) => { console.log('ERR ' + e.code); process.exit(0); });`;

/**
 * Connects from `ns` to `address:port`: what the server answered, or undefined when the connection failed or
 * nothing came back within `timeoutMs` (a bound on waiting for a packet that policy dropped).
 */
export async function tcpHello(
  ns: Netns,
  address: string,
  port: number,
  { timeoutMs = 3000, localAddress }: { timeoutMs?: number; localAddress?: string } = {},
): Promise<string | undefined> {
  const argv = [process.execPath, '-e', CLIENT, address, String(port), String(timeoutMs)];
  const r = await runIn(ns, localAddress ? [...argv, localAddress] : argv, { timeoutMs: timeoutMs + 60_000 });
  const line = r.stdout.trim();
  return line.startsWith('OK ') ? line.slice(3) : undefined;
}

/** Whether one ping from `ns` to `address` is answered within `seconds`. */
export async function ping(ns: Netns, address: string, seconds = 2): Promise<boolean> {
  const r = await runIn(ns, ['busybox', 'ping', '-c', '1', '-W', String(seconds), address]);
  return r.code === 0;
}
