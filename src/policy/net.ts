import { BlockList, isIP } from 'node:net';
import { ValidationError } from '../validate/schema.ts';

/**
 * `when.source_ip` compiled: one list per family. Kept apart because a single BlockList matches
 * IPv4 addresses against IPv6 rules such as `::/0` (it maps them into ::ffff:0:0/96).
 */
export interface IpRanges { readonly v4: BlockList; readonly v6: BlockList }

/** Compiles CIDRs or single addresses, IPv4 and IPv6. */
export function compileCidrs(entries: readonly string[], field: string): IpRanges {
  const ranges = { v4: new BlockList(), v6: new BlockList() };
  entries.forEach((entry, i) => {
    const at = `${field}.${i}`;
    const [address = '', prefix, extra] = entry.split('/');
    const family = isIP(address);
    if (family === 0 || address.includes('%') || extra !== undefined) {
      throw new ValidationError(`${at} is not an IP address or CIDR range`, at);
    }
    if (family === 6 && isIP(normaliseIp(address) ?? '') === 4) {
      throw new ValidationError(`${at} is IPv4-mapped: write the IPv4 form`, at);
    }
    const [list, type, max] = family === 4 ? [ranges.v4, 'ipv4', 32] as const : [ranges.v6, 'ipv6', 128] as const;
    if (prefix === undefined) {
      list.addAddress(address, type);
      return;
    }
    const bits = /^\d{1,3}$/.test(prefix) ? Number(prefix) : -1;
    if (bits < 0 || bits > max) throw new ValidationError(`${at} has an invalid prefix length`, at);
    list.addSubnet(address, bits, type);
  });
  return ranges;
}

const MAPPED_V4 = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/;

/**
 * Canonical form of a client address, or null when it is not one. An IPv4-mapped IPv6 address
 * (`::ffff:10.1.2.3`, how a dual-stack socket reports IPv4 peers) becomes the IPv4 address it
 * carries, so it matches IPv4 ranges and never IPv6 ones such as `::/0`. Done once per decision.
 */
export function normaliseIp(ip: unknown): string | null {
  if (typeof ip !== 'string') return null;
  const family = isIP(ip);
  if (family === 4) return ip;
  if (family !== 6 || ip.includes('%')) return null;
  const canonical = new URL(`http://[${ip}]`).hostname; // e.g. [::ffff:a01:203], whatever the spelling
  const m = MAPPED_V4.exec(canonical);
  if (!m) return canonical.slice(1, -1);
  const n = (parseInt(m[1]!, 16) << 16 >>> 0) + parseInt(m[2]!, 16);
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Whether a normalised address (see normaliseIp) is in the list. */
export function ipInList(ranges: IpRanges, ip: unknown): boolean {
  if (typeof ip !== 'string') return false;
  const family = isIP(ip);
  if (family === 4) return ranges.v4.check(ip, 'ipv4');
  return family === 6 && ranges.v6.check(ip, 'ipv6');
}
