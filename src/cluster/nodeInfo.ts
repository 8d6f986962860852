/** What a node tells the cluster about itself (its registry entry), refreshed at every heartbeat. */
export interface NodeLoad {
  /** TURN allocations alive on the node. */
  readonly allocations: number;
  /** Relay bandwidth now, bits/s. */
  readonly bps: number;
}

export interface NodeRelay {
  readonly addresses: readonly string[];
  readonly minPort: number;
  readonly maxPort: number;
}

export interface NodeInfo {
  readonly id: string;
  readonly region: string;
  /** The node's roles (`stun`, `turn`, `signal`, `api`). */
  readonly roles: readonly string[];
  /** Address clients reach STUN/TURN on (UDP and TCP), as advertised (`--external-ip`). */
  readonly host: string;
  readonly port: number;
  /** TURN over TLS port when the node has TLS. */
  readonly tlsPort?: number | undefined;
  /** Host of its turns: URL (`--tls-host`: the certificate's name); `host` when absent. */
  readonly tlsHost?: string | undefined;
  /**
   * The RFC 5780 alternate address (`--alt-ip`, `--alt-port`): listed as a second STUN server so
   * that clients without raw sockets (browsers) can run the mapping test (src/sdk/natDetect.ts).
   */
  readonly alt?: { readonly host: string; readonly port: number } | undefined;
  /**
   * With the TURN role: where its relay sockets are reached and their port range. Another TURN
   * node relays to these ports even where the addresses are denied peers (relay-to-relay,
   * src/turn/peerPolicy.ts); every other port of these addresses stays denied.
   */
  readonly relay?: NodeRelay | undefined;
  /**
   * With the signal role: the MQTT URLs clients reach its broker at (`--signal-url`, or its
   * WebSocket and TCP listeners as advertised), listed to clients nearest first
   * (signalingServers.ts).
   */
  readonly signal?: readonly string[] | undefined;
  readonly load: NodeLoad;
  /** Limits past which the node takes no new sessions; 0 = unlimited. */
  readonly capacity: NodeLoad;
  /** A draining node finishes its sessions but gets no new ones. */
  readonly draining: boolean;
  /** Unix ms of the last heartbeat, and the node's heartbeat interval: silent for 3 intervals = gone. */
  readonly heartbeatAt: number;
  readonly heartbeatMs: number;
}

/** Heartbeats a node may miss before it drops out. */
export const MISSED_HEARTBEATS = 3;

export const isAlive = (n: NodeInfo, nowMs: number): boolean => nowMs - n.heartbeatAt <= MISSED_HEARTBEATS * n.heartbeatMs;

export const atCapacity = (n: NodeInfo): boolean =>
  (n.capacity.allocations > 0 && n.load.allocations >= n.capacity.allocations) ||
  (n.capacity.bps > 0 && n.load.bps >= n.capacity.bps);

/** `host:port`, with brackets for IPv6. */
export const hostPort = (host: string, port: number): string => `${host.includes(':') ? `[${host}]` : host}:${port}`;

/** The relays of the cluster's other live TURN nodes, as the peer policy takes them. */
export function remoteRelays(nodes: readonly NodeInfo[], selfId: string): { addresses: readonly string[]; minPort: number; maxPort: number; port: number }[] {
  const out = [];
  for (const n of nodes) {
    if (n.id === selfId || n.relay === undefined || !n.roles.includes('turn')) continue;
    out.push({ addresses: n.relay.addresses, minPort: n.relay.minPort, maxPort: n.relay.maxPort, port: n.port });
  }
  return out;
}
