/**
 * The node's own addresses, from the configuration: where relay sockets bind and what
 * XOR-RELAYED-ADDRESS says (the relay addresses), and every address a peer could name to reach
 * this host's own services (peerPolicy.ts denies those, docs/turn.md "Peer policy").
 */
import { networkInterfaces } from 'node:os';
import { advertisedAddress } from '../config/advertised.ts';
import type { Config } from '../config/config.ts';
import { isWildcard } from '../config/values.ts';
import type { OwnAddresses } from './peerPolicy.ts';

export interface RelayAddress {
  readonly family: 4 | 6;
  /** Address relay sockets bind to. */
  readonly bind: string;
  /** Address told to clients in XOR-RELAYED-ADDRESS. */
  readonly advertised: string;
}

type AddressConfig = Pick<Config, 'listen' | 'externalIp' | 'externalIpPairs' | 'relayIps' | 'relayIp6' | 'alt' | 'port'>;

/**
 * Where relay sockets bind and what XOR-RELAYED-ADDRESS says, one entry per --relay-ip (and
 * --relay-ip6) in the order of Config.relayIps, which is the book's pool order
 * (reservations.ts); each told to clients as config/advertised.ts says (its --external-ip pair,
 * else --external-ip when given, of the same family; a wildcard as the host's first
 * public-facing address of the family). A wildcard told as one of this host's addresses binds
 * to that address; with no interface of its family it is left out.
 */
export function relayAddresses(config: AddressConfig): RelayAddress[] {
  const out: RelayAddress[] = [];
  for (const relayIp of config.relayIps) {
    const family = relayIp.includes(':') ? 6 : 4;
    const advertised = advertisedAddress(config, relayIp, family);
    if (advertised === undefined) continue;
    // A wildcard socket sends from the source address the route to each peer picks: on a host
    // with several addresses, not always the one told to clients, and the peer (its NAT's filter,
    // its ICE agent) then sees the relayed data come from an address it was never told (RFC 8656
    // section 2: the relayed transport address is the server's address for the relay). Told as
    // one of this host's own addresses, the sockets bind to it (docs/turn.md "Addresses told to
    // clients"); told as another (a NAT's), they stay on the wildcard.
    const bind = isWildcard(relayIp) && interfaceAddresses(family).includes(advertised) ? advertised : relayIp;
    out.push({ family, bind, advertised });
  }
  return out;
}

/** The host's interface addresses of one family (a wildcard listener is reached on each). */
function interfaceAddresses(family: 4 | 6): string[] {
  const want = family === 4 ? 'IPv4' : 'IPv6';
  return Object.values(networkInterfaces()).flat().flatMap((i) => (i !== undefined && i.family === want ? [i.address.split('%')[0]!] : []));
}

/**
 * The node's own addresses: --listen, --external-ip (plain, and both sides of each pair), --alt-ip,
 * every --relay-ip, --relay-ip6 and the advertised relay addresses; each wildcard among them
 * stands for every interface address of its family (`::` for both: a dual-stack socket takes
 * IPv4 too). Interfaces are read once, at start.
 */
export function ownAddresses(config: AddressConfig): OwnAddresses {
  const relays = relayAddresses(config);
  const named = [
    config.listen, config.externalIp, ...config.externalIpPairs.flatMap((p) => [p.publicIp, p.privateIp]),
    ...config.relayIps, config.relayIp6, config.alt?.ip, ...relays.map((r) => r.advertised),
  ];
  const own = new Set<string>();
  for (const a of named) {
    if (a === undefined) continue;
    if (a === '0.0.0.0') for (const i of interfaceAddresses(4)) own.add(i);
    else if (a === '::') for (const i of [...interfaceAddresses(4), ...interfaceAddresses(6)]) own.add(i);
    else own.add(a);
  }
  // Per relay address (the book's pool), where its sockets are reached.
  const relay = relays.map((r) => [...new Set(isWildcard(r.bind) ? [r.advertised] : [r.advertised, r.bind])]);
  const servicePorts = [config.port];
  if (config.alt) servicePorts.push(config.alt.port);
  return { own: [...own], relay: [...relay], servicePorts };
}
