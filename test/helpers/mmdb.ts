/**
 * A minimal MaxMind DB (MMDB v2) writer for tests: IPv4 networks with GeoIP2-Country-like
 * records ({country: {iso_code}, continent: {code}}), in an IPv6 tree (IPv4 under ::/96), 24-bit
 * records. Enough to exercise the real `maxmind` reader without shipping a GeoIP database.
 * Format: https://maxmind.github.io/MaxMind-DB/
 */
import { isIPv4 } from 'node:net';

type Value = string | number | bigint | Value[] | { [k: string]: Value };

function control(type: number, size: number): Buffer {
  const ext = type > 7;
  const first = (ext ? 0 : type << 5);
  let sizeBits: number;
  let sizeBytes: Buffer;
  if (size < 29) { sizeBits = size; sizeBytes = Buffer.alloc(0); }
  else if (size < 285) { sizeBits = 29; sizeBytes = Buffer.from([size - 29]); }
  else if (size < 65821) { sizeBits = 30; sizeBytes = Buffer.alloc(2); sizeBytes.writeUInt16BE(size - 285); }
  else throw new Error('value too large for this writer');
  return Buffer.concat([Buffer.from([first | sizeBits]), ...(ext ? [Buffer.from([type - 7])] : []), sizeBytes]);
}

function uint(type: number, v: bigint): Buffer {
  const bytes: number[] = [];
  for (let x = v; x > 0n; x >>= 8n) bytes.unshift(Number(x & 0xffn));
  return Buffer.concat([control(type, bytes.length), Buffer.from(bytes)]);
}

function encode(v: Value): Buffer {
  if (typeof v === 'string') {
    const b = Buffer.from(v, 'utf8');
    return Buffer.concat([control(2, b.length), b]);
  }
  if (typeof v === 'bigint') return uint(9, v);
  if (typeof v === 'number') return uint(v < 65536 ? 5 : 6, BigInt(v));
  if (Array.isArray(v)) return Buffer.concat([control(11, v.length), ...v.map(encode)]);
  const entries = Object.entries(v);
  return Buffer.concat([control(7, entries.length), ...entries.flatMap(([k, x]) => [encode(k), encode(x)])]);
}

interface TrieNode { children: [TrieNode | number | undefined, TrieNode | number | undefined] }

export interface GeoEntry {
  /** IPv4 CIDR, e.g. `198.51.100.0/24`. */
  readonly cidr: string;
  readonly country: string;
  readonly continent: string;
}

export function buildCountryMmdb(entries: readonly GeoEntry[]): Buffer {
  const data: Buffer[] = [];
  let dataLen = 0;
  const root: TrieNode = { children: [undefined, undefined] };
  for (const e of entries) {
    const [addr, prefixRaw] = e.cidr.split('/') as [string, string];
    if (!isIPv4(addr)) throw new Error('IPv4 only');
    const prefix = Number(prefixRaw);
    const offset = dataLen;
    const rec = encode({ country: { iso_code: e.country }, continent: { code: e.continent } });
    data.push(rec);
    dataLen += rec.length;
    const octets = addr.split('.').map(Number);
    const bits: number[] = Array<number>(96).fill(0);
    for (let i = 0; i < prefix; i++) bits.push(((octets[i >> 3] as number) >> (7 - (i & 7))) & 1);
    let node = root;
    for (let i = 0; i < bits.length; i++) {
      const bit = bits[i] as 0 | 1;
      if (i === bits.length - 1) { node.children[bit] = offset; break; }
      let next = node.children[bit];
      if (typeof next !== 'object') { next = { children: [undefined, undefined] }; node.children[bit] = next; }
      node = next;
    }
  }
  // Number the nodes breadth first; root is 0.
  const order: TrieNode[] = [];
  const index = new Map<TrieNode, number>();
  for (let q = [root]; q.length > 0;) {
    const n = q.shift() as TrieNode;
    index.set(n, order.length);
    order.push(n);
    for (const c of n.children) if (typeof c === 'object') q.push(c);
  }
  const nodeCount = order.length;
  const tree = Buffer.alloc(nodeCount * 6);
  order.forEach((n, i) => {
    n.children.forEach((c, side) => {
      const value = c === undefined ? nodeCount : typeof c === 'number' ? nodeCount + 16 + c : (index.get(c) as number);
      tree.writeUIntBE(value, i * 6 + side * 3, 3);
    });
  });
  const metadata = encode({
    node_count: nodeCount, record_size: 24, ip_version: 6, database_type: 'p2pd-test-country',
    languages: ['en'], binary_format_major_version: 2, binary_format_minor_version: 0,
    build_epoch: BigInt(Math.floor(Date.now() / 1000)), description: { en: 'p2pd test database' },
  });
  return Buffer.concat([tree, Buffer.alloc(16), ...data, Buffer.from('ABCDEF4D61784D696E642E636F6D', 'hex'), metadata]);
}
