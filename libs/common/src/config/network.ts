import { BlockList, isIP } from 'node:net';

/** True for `a.b.c.d/n` or an IPv6 prefix; a bare address counts as a single-host network. */
export function isCidr(text: string): boolean {
  const [address, prefix] = text.split('/');
  const family = isIP(address);
  if (family === 0) return false;
  if (prefix === undefined) return true;
  const bits = Number(prefix);
  return Number.isInteger(bits) && bits >= 0 && bits <= (family === 4 ? 32 : 128) && /^\d+$/.test(prefix);
}

/** Builds a `BlockList` (used as an allow-list) from CIDR strings. */
export function networkList(cidrs: string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address, prefix] = cidr.split('/');
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return list;
}

/** Whether `address` (v4, v6 or v4-mapped v6) falls in `list`. */
export function addressInList(list: BlockList, address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return list.check(mapped[1], 'ipv4');
  const family = isIP(address);
  if (family === 0) return false;
  return list.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

const PRIVATE_HOST_SUFFIXES = ['.local', '.internal', '.svc', '.localhost'];
const PRIVATE_NETWORKS = networkList([
  '127.0.0.0/8',
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '169.254.0.0/16',
  '::1/128',
  'fc00::/7',
  'fe80::/10',
]);

/** Loopback, private, `.local`/`.internal`/`.svc`/`.localhost` or dotless hosts may be reached over plain http. */
export function isPrivateHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost') return true;
  if (isIP(host) !== 0) return addressInList(PRIVATE_NETWORKS, host);
  if (!host.includes('.')) return true;
  return PRIVATE_HOST_SUFFIXES.some((suffix) => host.endsWith(suffix));
}
