/**
 * Which region a caller is in, from its IP address:
 * 1. the operator's CIDR table (`--region-map FILE`, "cidrs"), longest prefix first — explicit
 *    wins, and it is the only way to place private or lab addresses;
 * 2. GeoIP (`--geoip-db FILE`, any MaxMind-format City/Country database read with the `maxmind`
 *    package): the country, then the continent, mapped through the table's "countries" and
 *    "continents"; without an entry there, a cluster region named like the country or continent
 *    code (`de`, `eu`) is taken;
 * 3. otherwise the node's own region.
 *
 * Region map file (JSON):
 *   { "cidrs": { "10.1.0.0/16": "eu-west" }, "countries": { "DE": "eu-west" }, "continents": { "NA": "us-east" } }
 */
import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { open as openMmdb, type Reader, type Response } from 'maxmind';
import { invalidValue } from '../errors.ts';

export interface RegionMap {
  readonly cidrs?: Readonly<Record<string, string>>;
  readonly countries?: Readonly<Record<string, string>>;
  readonly continents?: Readonly<Record<string, string>>;
}

interface CidrEntry {
  readonly prefix: number;
  readonly list: BlockList;
  readonly region: string;
}

interface GeoRecord {
  readonly country?: { readonly iso_code?: string };
  readonly registered_country?: { readonly iso_code?: string };
  readonly continent?: { readonly code?: string };
}

/** IPv4-mapped IPv6 (`::ffff:1.2.3.4`, as Node reports IPv4 clients on dual-stack sockets) → IPv4. */
export function normalizeIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? (m[1] as string) : ip;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads and checks a region map file; errors name the option. */
export function loadRegionMap(file: string): RegionMap {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw invalidValue('region-map', file, `a readable JSON file (${(err as Error).message})`);
  }
  if (!isRecord(parsed)) throw invalidValue('region-map', file, 'a JSON object with cidrs, countries, continents');
  for (const part of ['cidrs', 'countries', 'continents'] as const) {
    const v = parsed[part];
    if (v === undefined) continue;
    if (!isRecord(v) || !Object.values(v).every((r) => typeof r === 'string')) {
      throw invalidValue('region-map', file, `"${part}" as an object of strings`);
    }
  }
  return parsed as RegionMap;
}

export interface RegionResolverOptions {
  readonly defaultRegion: string;
  readonly regionMap?: RegionMap | undefined;
  /** A MaxMind-format database already opened, or its path (see {@link RegionResolver.open}). */
  readonly geoip?: Reader<Response> | undefined;
}

export class RegionResolver {
  private readonly defaultRegion: string;
  private readonly cidrs: CidrEntry[] = [];
  private readonly countries: ReadonlyMap<string, string>;
  private readonly continents: ReadonlyMap<string, string>;
  private readonly geoip: Reader<Response> | undefined;

  constructor(opts: RegionResolverOptions) {
    this.defaultRegion = opts.defaultRegion;
    this.geoip = opts.geoip;
    const map = opts.regionMap ?? {};
    for (const [cidr, region] of Object.entries(map.cidrs ?? {})) {
      const slash = cidr.indexOf('/');
      const addr = slash < 0 ? cidr : cidr.slice(0, slash);
      const family = isIP(addr);
      if (family === 0) throw invalidValue('region-map', cidr, 'a CIDR such as 10.0.0.0/8');
      const prefix = slash < 0 ? (family === 4 ? 32 : 128) : Number(cidr.slice(slash + 1));
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) throw invalidValue('region-map', cidr, 'a CIDR such as 10.0.0.0/8');
      const list = new BlockList();
      list.addSubnet(addr, prefix, family === 4 ? 'ipv4' : 'ipv6');
      this.cidrs.push({ prefix, list, region });
    }
    this.cidrs.sort((a, b) => b.prefix - a.prefix);
    this.countries = new Map(Object.entries(map.countries ?? {}).map(([k, v]) => [k.toUpperCase(), v]));
    this.continents = new Map(Object.entries(map.continents ?? {}).map(([k, v]) => [k.toUpperCase(), v]));
  }

  /** Opens the GeoIP database when a path is given. */
  static async open(opts: { defaultRegion: string; regionMap?: RegionMap | undefined; geoipDb?: string | undefined }): Promise<RegionResolver> {
    let geoip: Reader<Response> | undefined;
    if (opts.geoipDb !== undefined) {
      try {
        geoip = await openMmdb<Response>(opts.geoipDb);
      } catch (err) {
        throw invalidValue('geoip-db', opts.geoipDb, `a MaxMind-format database (${(err as Error).message})`);
      }
    }
    return new RegionResolver({ defaultRegion: opts.defaultRegion, regionMap: opts.regionMap, geoip });
  }

  /**
   * The caller's region. `knownRegions` (regions that have nodes) lets a GeoIP country or
   * continent code stand for a region of that name.
   */
  resolve(ipRaw: string, knownRegions: ReadonlySet<string> = new Set()): string {
    const ip = normalizeIp(ipRaw);
    const family = isIP(ip);
    if (family === 0) return this.defaultRegion;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    for (const e of this.cidrs) {
      if (e.list.check(ip, type)) return e.region;
    }
    if (this.geoip) {
      let rec: GeoRecord | null = null;
      try {
        rec = this.geoip.get(ip) as GeoRecord | null;
      } catch {
        rec = null; // an IPv6 lookup in an IPv4-only database
      }
      const country = (rec?.country?.iso_code ?? rec?.registered_country?.iso_code)?.toUpperCase();
      const continent = rec?.continent?.code?.toUpperCase();
      const mapped = (country && this.countries.get(country)) || (continent && this.continents.get(continent));
      if (mapped) return mapped;
      for (const code of [country, continent]) {
        if (code && knownRegions.has(code.toLowerCase())) return code.toLowerCase();
      }
    }
    return this.defaultRegion;
  }
}
