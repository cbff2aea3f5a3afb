import { BlockList, isIP } from 'node:net';
import { ValidationError } from '../registry/validate.ts';

/** Compiles `when.source_ip` (CIDRs or single addresses, IPv4 and IPv6) into one BlockList. */
export function compileCidrs(entries: readonly string[], field: string): BlockList {
  const list = new BlockList();
  entries.forEach((entry, i) => {
    const at = `${field}.${i}`;
    const [address = '', prefix, extra] = entry.split('/');
    const family = isIP(address);
    if (family === 0 || address.includes('%') || extra !== undefined) {
      throw new ValidationError(`${at} is not an IP address or CIDR range`, at);
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) {
      list.addAddress(address, type);
      return;
    }
    const bits = /^\d{1,3}$/.test(prefix) ? Number(prefix) : -1;
    if (bits < 0 || bits > (family === 4 ? 32 : 128)) {
      throw new ValidationError(`${at} has an invalid prefix length`, at);
    }
    list.addSubnet(address, bits, type);
  });
  return list;
}

const MAPPED_V4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/**
 * Whether a client address is in the list. An IPv4-mapped IPv6 address (`::ffff:10.1.2.3`, how a
 * dual-stack socket reports IPv4 peers) is checked as the IPv4 address it carries.
 */
export function ipInList(list: BlockList, ip: unknown): boolean {
  if (typeof ip !== 'string') return false;
  const mapped = MAPPED_V4.exec(ip)?.[1];
  const address = mapped ?? ip;
  const family = isIP(address);
  if (family === 0 || address.includes('%')) return false;
  return list.check(address, family === 4 ? 'ipv4' : 'ipv6');
}
