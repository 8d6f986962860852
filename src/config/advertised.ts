/**
 * The address clients are told for one of the node's local addresses (docs/turn.md "Addresses
 * told to clients"): what XOR-RELAYED-ADDRESS says for a relay socket, what RESPONSE-ORIGIN says
 * for the STUN listener, and the host a session's ICE servers name. One rule for all three.
 */
import { networkInterfaces } from 'node:os';
import type { Config } from './config.ts';
import { isWildcard } from './values.ts';

const familyOf = (ip: string): 4 | 6 => (ip.includes(':') ? 6 : 4);

/** What advertising needs of the configuration; `externalIpPairs` may be left out (none). */
export type AdvertisingConfig = Pick<Config, 'listen' | 'externalIp'> & Partial<Pick<Config, 'externalIpPairs'>>;

/**
 * The address of `family` clients reach the local address `local` at:
 * 0. the PUBLIC of an `--external-ip PUBLIC/PRIVATE` pair whose PRIVATE is `local` (one per
 *    relay address when there are several behind a 1:1 NAT);
 * 1. --external-ip, when it is a concrete address of `family` and either `local` is a wildcard
 *    or --external-ip was given (it defaults to --listen): a 1:1 NAT or a cloud public IP stands
 *    in front of --listen and --relay-ip alike;
 * 2. else, for a wildcard, the first pair's PUBLIC of `family`, else the host's first
 *    non-loopback interface address of `family` (the loopback one when there is no other;
 *    undefined when there is none of the family);
 * 3. else `local` itself.
 */
export function advertisedAddress(config: AdvertisingConfig, local: string, family: 4 | 6): string | undefined {
  const pairs = config.externalIpPairs ?? [];
  const paired = pairs.find((p) => p.privateIp === local);
  if (paired !== undefined) return paired.publicIp;
  const ext = config.externalIp;
  if (!isWildcard(ext) && familyOf(ext) === family && (isWildcard(local) || ext !== config.listen)) {
    // A defaulted --external-ip is --listen itself, which may have a pair of its own.
    return ext === config.listen ? (pairs.find((p) => p.privateIp === ext)?.publicIp ?? ext) : ext;
  }
  if (!isWildcard(local)) return local;
  return pairs.find((p) => familyOf(p.publicIp) === family)?.publicIp ?? hostAddress(family);
}

/**
 * The host clients reach the STUN/TURN listener (--listen) at, for URLs: the advertised address
 * of --external-ip's family, IPv4 for a wildcard (a `::` socket takes IPv4 too).
 */
export function advertisedHost(config: AdvertisingConfig): string {
  const ext = config.externalIp;
  return advertisedAddress(config, config.listen, isWildcard(ext) ? 4 : familyOf(ext)) ?? '127.0.0.1';
}

function hostAddress(family: 4 | 6): string | undefined {
  const all = Object.values(networkInterfaces()).flat().filter((i) => i !== undefined);
  const ofFamily = all.filter((i) => i.family === (family === 4 ? 'IPv4' : 'IPv6') && !(family === 6 && i.address.startsWith('fe80')));
  return (ofFamily.find((i) => !i.internal) ?? ofFamily[0])?.address;
}

/**
 * Where clients reach this node's signaling (docs/signaling.md "Finding a node"): `--signal-url`
 * as given; else, with the embedded broker, MQTT over WebSocket on --http (`/mqtt`) and MQTT on
 * --mqtt at their advertised addresses; with an external broker (--mqtt-url) none (the operator
 * says with --signal-url where clients reach it).
 */
export function advertisedSignalUrls(config: AdvertisingConfig & Pick<Config, 'http' | 'mqtt' | 'mqttUrl' | 'signalUrls'>): string[] {
  if (config.signalUrls.length > 0) return [...config.signalUrls];
  if (config.mqttUrl !== undefined) return [];
  const at = (host: string, port: number): string => {
    const h = advertisedAddress(config, host, isWildcard(host) ? (isWildcard(config.externalIp) ? 4 : familyOf(config.externalIp)) : familyOf(host)) ?? '127.0.0.1';
    return `${h.includes(':') ? `[${h}]` : h}:${port}`;
  };
  const urls = [`ws://${at(config.http.host, config.http.port)}/mqtt`];
  if (config.mqtt.port !== 0) urls.push(`mqtt://${at(config.mqtt.host, config.mqtt.port)}`);
  return urls;
}
