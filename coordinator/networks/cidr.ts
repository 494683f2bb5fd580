/**
 * IPv4 addresses and CIDR blocks as plain numbers, for the allocator: an address is an unsigned 32-bit integer,
 * a block its base and prefix length. Parsing is strict (four decimal octets 0–255, a base with no host bits)
 * and returns undefined on anything else, so callers name the field that was wrong.
 */

/** An IPv4 block: `base` has no bits set below the prefix. */
export interface Block {
  /** First address, as an unsigned integer. */
  base: number;
  /** Prefix length, 0–32. */
  prefix: number;
}

/** The address as an unsigned integer, or undefined when it is not a dotted-quad IPv4 address. */
export function parseIPv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const octet = Number(p);
    if (octet > 255) return undefined;
    n = n * 256 + octet;
  }
  return n;
}

/** Dotted-quad text of an address. */
export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** The block of a CIDR, or undefined when it is not one (or has host bits set). */
export function parseCidr(text: string): Block | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const base = parseIPv4(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (base === undefined || !/^[0-9]{1,2}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > 32) return undefined;
  if (base % size({ base: 0, prefix }) !== 0) return undefined;
  return { base, prefix };
}

/** CIDR text of a block. */
export function formatCidr(b: Block): string {
  return `${formatIPv4(b.base)}/${b.prefix}`;
}

/** Number of addresses in a block. */
export function size(b: Block): number {
  return 2 ** (32 - b.prefix);
}

/** Last address of a block. */
export function lastOf(b: Block): number {
  return b.base + size(b) - 1;
}

/** Whether the address lies in the block. */
export function contains(b: Block, address: number): boolean {
  return address >= b.base && address <= lastOf(b);
}

/** Whether `inner` lies entirely inside `outer`. */
export function within(inner: Block, outer: Block): boolean {
  return inner.prefix >= outer.prefix && contains(outer, inner.base);
}

/** Whether two blocks share an address. */
export function overlaps(a: Block, b: Block): boolean {
  return a.base <= lastOf(b) && b.base <= lastOf(a);
}

/** Whether text looks like an IPv6 address (has a colon): refused for now, with its own message. */
export function looksLikeIPv6(text: string): boolean {
  return text.includes(':');
}
