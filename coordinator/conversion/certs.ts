/**
 * The webhook's serving certificate: a self-signed CA and a certificate it signs for the webhook's names and
 * addresses, made with node:crypto alone (ECDSA P-256, SHA-256; a small DER writer below), so the coordinator's
 * image needs no openssl. kube-apiserver trusts the CA through the CRDs' `caBundle`.
 */
import crypto from 'node:crypto';
import { isIP } from 'node:net';

/** PEM texts of the CA certificate, the serving certificate and its private key. */
export interface ServingCerts {
  /** The CA certificate (PEM): what goes into caBundle. */
  ca: string;
  /** The serving certificate (PEM). */
  cert: string;
  /** The serving certificate's private key (PKCS#8 PEM). */
  key: string;
}

// --- DER ----------------------------------------------------------------------------------------------------

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}
const seq = (...c: Buffer[]) => tlv(0x30, ...c);
const set = (...c: Buffer[]) => tlv(0x31, ...c);
function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out = [parts[0]! * 40 + parts[1]!];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    for (let v = p >> 7; v > 0; v >>= 7) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}
function int(bytes: Buffer): Buffer {
  return tlv(0x02, bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
}
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const octets = (b: Buffer) => tlv(0x04, b);
const bits = (b: Buffer, unused = 0) => tlv(0x03, Buffer.from([unused]), b);
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));
const explicit = (n: number, c: Buffer) => tlv(0xa0 + n, c);
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14); // YYYYMMDDHHMMSS
  return d.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`))
    : tlv(0x18, Buffer.from(`${iso}Z`));
}
const name = (cn: string) => seq(set(seq(oid('2.5.4.3'), utf8(cn))));
const ext = (id: string, critical: boolean, value: Buffer) =>
  seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));

interface KeyPair {
  privateKey: crypto.KeyObject;
  spki: Buffer;
  keyId: Buffer;
}
function keyPair(): KeyPair {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  // The subject key identifier: SHA-1 of the public key's bits (RFC 5280 4.2.1.2, method 1).
  const point = spki.subarray(spki.length - 65);
  return { privateKey, spki, keyId: crypto.createHash('sha1').update(point).digest() };
}

function certificate(o: {
  subject: string;
  issuer: string;
  subjectKey: KeyPair;
  issuerKey: KeyPair;
  ca: boolean;
  hosts: string[];
  days: number;
}): string {
  const serial = crypto.randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  const now = Date.now();
  const exts = [
    ext('2.5.29.19', true, o.ca ? seq(bool(true)) : seq()),
    // keyUsage: CA digitalSignature|keyCertSign|cRLSign (0x86, 1 unused bit); leaf digitalSignature|keyEncipherment.
    ext('2.5.29.15', true, o.ca ? bits(Buffer.from([0x86]), 1) : bits(Buffer.from([0xa0]), 5)),
    ext('2.5.29.14', false, octets(o.subjectKey.keyId)),
  ];
  if (!o.ca) {
    exts.push(ext('2.5.29.35', false, seq(tlv(0x80, o.issuerKey.keyId))));
    exts.push(ext('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))));
    const sans = o.hosts.map((h) => {
      if (isIP(h) === 4) return tlv(0x87, Buffer.from(h.split('.').map(Number)));
      return tlv(0x82, Buffer.from(h, 'ascii'));
    });
    exts.push(ext('2.5.29.17', false, seq(...sans)));
  }
  const tbs = seq(
    explicit(0, int(Buffer.from([2]))),
    int(serial),
    ECDSA_SHA256,
    name(o.issuer),
    seq(time(new Date(now - 5 * 60_000)), time(new Date(now + o.days * 86_400_000))),
    name(o.subject),
    o.subjectKey.spki,
    explicit(3, seq(...exts)),
  );
  const signature = crypto.sign('sha256', tbs, o.issuerKey.privateKey);
  const der = seq(tbs, ECDSA_SHA256, bits(signature));
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE-----\n${b64.replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}

/**
 * A new CA and a serving certificate signed by it for `hosts` (DNS names and IPv4 addresses), valid for `days`
 * (default ten years: the CA sits in the CRDs and is replaced only with the Secret or files holding it).
 */
export function makeServingCerts(hosts: string[], days = 3650): ServingCerts {
  const caKey = keyPair();
  const leafKey = keyPair();
  const ca = certificate({
    subject: 'edge-coordinator webhook CA',
    issuer: 'edge-coordinator webhook CA',
    subjectKey: caKey,
    issuerKey: caKey,
    ca: true,
    hosts: [],
    days,
  });
  const cert = certificate({
    subject: hosts[0] ?? 'edge-coordinator-webhook',
    issuer: 'edge-coordinator webhook CA',
    subjectKey: leafKey,
    issuerKey: caKey,
    ca: false,
    hosts,
    days,
  });
  return { ca, cert, key: leafKey.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}
