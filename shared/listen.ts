/**
 * `host:port` listen addresses of the daemons' HTTP endpoints (`--metrics-address`): parsed with errors that
 * name the flag, and bound with the port read back (port 0 picks a free one, as tests do).
 */
import type { Server } from 'node:http';

/** A parsed listen address. */
export interface ListenAddress {
  /** Interface address, without brackets (`0.0.0.0`, `127.0.0.1`, `::1`). */
  host: string;
  /** TCP port; 0 lets the kernel choose. */
  port: number;
}

/** Parses `host:port`, `[v6]:port` or `:port` (all interfaces); throws naming `flag` when it is not one. */
export function parseListenAddress(text: string, flag = '--metrics-address'): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535)
    throw new Error(
      `${flag}: expected host:port (e.g. 127.0.0.1:9464 or [::1]:9464), got ${JSON.stringify(text)}`,
    );
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** Listens on `addr`; resolves with the bound port and a URL to reach it (loopback for a wildcard address). */
export function listen(server: Server, addr: ListenAddress): Promise<{ port: number; url: string }> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      const a = server.address();
      const port = typeof a === 'object' && a ? a.port : addr.port;
      const host =
        addr.host === '0.0.0.0'
          ? '127.0.0.1'
          : addr.host === '::'
            ? '[::1]'
            : addr.host.includes(':')
              ? `[${addr.host}]`
              : addr.host;
      resolve({ port, url: `http://${host}:${port}` });
    });
  });
}
