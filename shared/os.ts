/**
 * Small operating-system helpers the agent and the local stack (deploy/stack/) share, one copy each: whether a
 * process lives, a free TCP port, and names safe for files, containers and QEMU. No imports from the rest of
 * the project, so anything may import it.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';

/**
 * True when a process with this pid exists and is not a zombie. A process of another user counts (signal 0
 * answers EPERM for it); a zombie (or a pid being reaped) does not, since it will never do anything again.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the command name, which is in parentheses and may itself contain ") ".
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/**
 * A free TCP port on `address` (bound to port 0, read, closed). Another process may still take it before the
 * caller binds it, so a caller that can retry should.
 */
export function freePort(address = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, address, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

/**
 * `s` with every character outside `[a-zA-Z0-9_.-]` replaced by `-`: what Docker accepts in container and
 * volume names, and safe as one path segment. Not injective (`a/b` and `a:b` both become `a-b`); the parts
 * callers join with `_` are Kubernetes names and host names, which have neither.
 */
export function safeName(s: string): string {
  return s.replace(/[^a-zA-Z0-9_.-]/g, '-');
}
