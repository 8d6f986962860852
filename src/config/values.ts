/**
 * Parsers for option values. Each takes the raw string and the option name and returns the typed
 * value or throws CONFIG_INVALID_VALUE naming the option and what was expected.
 */
import { isIP } from 'node:net';
import { invalidValue } from '../errors.ts';

export function parseInteger(name: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw)) throw invalidValue(name, raw, `an integer from ${min} to ${max}`);
  const n = Number(raw);
  if (n < min || n > max) throw invalidValue(name, raw, `an integer from ${min} to ${max}`);
  return n;
}

export function parseIp(name: string, raw: string): string {
  if (isIP(raw) === 0) throw invalidValue(name, raw, 'an IPv4 or IPv6 address');
  return raw;
}

/** A DNS name (RFC 1123 §2.1 labels, at most 253 characters) or an IP address. */
export function parseHostName(name: string, raw: string): string {
  if (isIP(raw) !== 0) return raw;
  const label = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;
  if (raw.length > 253 || !raw.split('.').every((l) => label.test(l))) throw invalidValue(name, raw, 'a DNS name or an IP address');
  return raw;
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** `IP:PORT`, `[IPv6]:PORT` or `:PORT` (all interfaces). */
export function parseHostPort(name: string, raw: string): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d+)$/.exec(raw);
  if (!m) throw invalidValue(name, raw, 'IP:PORT');
  const host = m[1] ?? (m[2] === '' ? '0.0.0.0' : (m[2] as string));
  if (host !== 'localhost' && isIP(host) === 0) throw invalidValue(name, raw, 'IP:PORT with a literal IP');
  return { host, port: parseInteger(name, m[3] as string, 0, 65535) };
}

/** `--external-ip PUBLIC/PRIVATE` (coturn's form): the local address PRIVATE is told to clients as PUBLIC. */
export interface ExternalIpPair {
  readonly publicIp: string;
  readonly privateIp: string;
}

/** One `--external-ip` item: `IP` (the plain address) or `PUBLIC/PRIVATE`, both concrete and of one family. */
export function parseExternalIp(name: string, raw: string): string | ExternalIpPair {
  const slash = raw.indexOf('/');
  if (slash < 0) return parseIp(name, raw);
  const publicIp = raw.slice(0, slash);
  const privateIp = raw.slice(slash + 1);
  const expected = 'PUBLIC/PRIVATE: two addresses of one family, neither a wildcard';
  const family = isIP(publicIp);
  if (family === 0 || isIP(privateIp) !== family || isWildcard(publicIp) || isWildcard(privateIp)) throw invalidValue(name, raw, expected);
  return { publicIp, privateIp };
}

export const isWildcard = (ip: string): boolean => ip === '0.0.0.0' || ip === '::';

/** Items of a list option, each of which may itself be comma-separated (`--relay-ip a,b --relay-ip c`). */
export function splitItems(items: readonly string[]): string[] {
  return items.flatMap((i) => i.split(',')).map((i) => i.trim()).filter(Boolean);
}

export interface PortRange {
  readonly min: number;
  readonly max: number;
}

export function parsePortRange(name: string, raw: string): PortRange {
  const m = /^(\d+)-(\d+)$/.exec(raw);
  if (!m) throw invalidValue(name, raw, 'MIN-MAX');
  const min = parseInteger(name, m[1] as string, 1024, 65535);
  const max = parseInteger(name, m[2] as string, 1024, 65535);
  if (min > max) throw invalidValue(name, raw, 'MIN-MAX with MIN <= MAX');
  return { min, max };
}

export interface Cidr {
  readonly text: string;
  readonly family: 4 | 6;
  readonly address: string;
  readonly prefix: number;
}

export function parseCidr(name: string, raw: string): Cidr {
  const slash = raw.lastIndexOf('/');
  const address = slash < 0 ? raw : raw.slice(0, slash);
  const family = isIP(address);
  if (family === 0) throw invalidValue(name, raw, 'a CIDR such as 10.0.0.0/8 or fd00::/8');
  const maxPrefix = family === 4 ? 32 : 128;
  const prefix = slash < 0 ? maxPrefix : parseInteger(name, raw.slice(slash + 1), 0, maxPrefix);
  return { text: raw, family: family as 4 | 6, address, prefix };
}

export interface StaticUser {
  readonly name: string;
  readonly password: string;
}

export function parseUser(name: string, raw: string): StaticUser {
  const colon = raw.indexOf(':');
  if (colon <= 0 || colon === raw.length - 1) throw invalidValue(name, '<hidden>', 'NAME:PASS with both parts non-empty');
  return { name: raw.slice(0, colon), password: raw.slice(colon + 1) };
}

export function parseBoolean(name: string, raw: string): boolean {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw invalidValue(name, raw, 'true or false');
}
