/**
 * Test certificates made with openssl: a CA, a server certificate for 127.0.0.1/localhost, another CA, and a client
 * certificate (for servers that verify clients). Valid from now for `days` (default 1).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** A CA and a server certificate for 127.0.0.1, and a client certificate `clientCert`/`clientKey`. */
export function makeCerts(
  dir: string,
  { days = 1 }: { days?: number } = {},
): { ca: string; cert: string; key: string; otherCa: string; clientCert: string; clientKey: string } {
  const f = (n: string) => path.join(dir, n);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  for (const ca of ['ca', 'other-ca']) {
    ssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      String(days),
      '-subj',
      `/CN=edgeplane test ${ca}`,
      '-keyout',
      f(`${ca}.key`),
      '-out',
      f(`${ca}.pem`),
    );
  }
  /** A key and a certificate `<name>.key`/`<name>.pem` for `cn`, signed by the CA, with extensions `ext`. */
  const issue = (name: string, cn: string, ext: string) => {
    ssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${cn}`,
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.csr`),
    );
    fs.writeFileSync(f(`${name}.cnf`), `${ext}\n`);
    ssl(
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-days',
      String(days),
      '-extfile',
      f(`${name}.cnf`),
      '-out',
      f(`${name}.pem`),
    );
  };
  issue('server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:localhost');
  issue('client', 'edgeplane test host', 'extendedKeyUsage=clientAuth');
  return {
    ca: f('ca.pem'),
    cert: f('server.pem'),
    key: f('server.key'),
    otherCa: f('other-ca.pem'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
  };
}
