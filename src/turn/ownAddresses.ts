/**
 * The node's own addresses, from the configuration: where relay sockets bind and what
 * XOR-RELAYED-ADDRESS says (the relay addresses), and every address a peer could name to reach
 * this host's own services (peerPolicy.ts denies those, docs/turn.md "Peer policy").
 */
import { networkInterfaces } from 'node:os';
import { advertisedAddress } from '../config/advertised.ts';
import type { Config } from '../config/config.ts';
import type { OwnAddresses } from './peerPolicy.ts';

export interface RelayAddress {
  /** Address relay sockets bind to. */
  readonly bind: string;
  /** Address told to clients in XOR-RELAYED-ADDRESS. */
  readonly advertised: string;
}

type AddressConfig = Pick<Config, 'listen' | 'externalIp' | 'relayIp' | 'relayIp6' | 'alt' | 'port'>;

const v6 = (ip: string): boolean => ip.includes(':');
const isWildcard = (ip: string): boolean => ip === '0.0.0.0' || ip === '::';

/**
 * Where relay sockets bind and what XOR-RELAYED-ADDRESS says: --relay-ip (and --relay-ip6), told
 * to clients as config/advertised.ts says (--external-ip when given, of the same family; a
 * wildcard as the host's first public-facing address of the family).
 */
export function relayAddresses(config: AddressConfig): { relay4: RelayAddress | undefined; relay6: RelayAddress | undefined } {
  const ip4 = v6(config.relayIp) ? undefined : config.relayIp;
  const ip6 = v6(config.relayIp) ? config.relayIp : config.relayIp6;
  const make = (bind: string | undefined, family: 4 | 6): RelayAddress | undefined => {
    if (bind === undefined) return undefined;
    const advertised = advertisedAddress(config, bind, family);
    return advertised === undefined ? undefined : { bind, advertised };
  };
  return { relay4: make(ip4, 4), relay6: make(ip6, 6) };
}

/** The host's interface addresses of one family (a wildcard listener is reached on each). */
function interfaceAddresses(family: 4 | 6): string[] {
  const want = family === 4 ? 'IPv4' : 'IPv6';
  return Object.values(networkInterfaces()).flat().flatMap((i) => (i !== undefined && i.family === want ? [i.address.split('%')[0]!] : []));
}

/**
 * The node's own addresses: --listen, --external-ip, --alt-ip, --relay-ip, --relay-ip6 and the
 * advertised relay addresses; each wildcard among them stands for every interface address of its
 * family (`::` for both: a dual-stack socket takes IPv4 too). Interfaces are read once, at start.
 */
export function ownAddresses(config: AddressConfig): OwnAddresses {
  const { relay4, relay6 } = relayAddresses(config);
  const named = [config.listen, config.externalIp, config.relayIp, config.relayIp6, config.alt?.ip, relay4?.advertised, relay6?.advertised];
  const own = new Set<string>();
  for (const a of named) {
    if (a === undefined) continue;
    if (a === '0.0.0.0') for (const i of interfaceAddresses(4)) own.add(i);
    else if (a === '::') for (const i of [...interfaceAddresses(4), ...interfaceAddresses(6)]) own.add(i);
    else own.add(a);
  }
  const relay = new Set<string>();
  for (const r of [relay4, relay6]) {
    if (r === undefined) continue;
    relay.add(r.advertised);
    if (!isWildcard(r.bind)) relay.add(r.bind);
  }
  const servicePorts = [config.port];
  if (config.alt) servicePorts.push(config.alt.port);
  return { own: [...own], relay: [...relay], servicePorts };
}
