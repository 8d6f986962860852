/**
 * Where a client connects for signaling (docs/signaling.md "Finding a node"): the live, not
 * draining nodes with the signal role that advertise MQTT URLs, nearest first like the ICE
 * servers: the caller's region, then the others, each in the rendezvous order of the caller's
 * id. Every node gives a client the same order, and different clients get different orders, so
 * the clients of a node that dies spread over the rest instead of all moving to one.
 */
import type { NodeInfo } from './nodeInfo.ts';
import { rendezvousOrder } from './placement.ts';

/** One node's signaling: its MQTT URLs (e.g. `ws://…/mqtt` and `mqtt://…`); a client takes the one its transport speaks. */
export interface SignalingServer {
  readonly urls: readonly string[];
}

/** Longest list a caller gets: enough to outlive a few dead nodes, short at any cluster size. */
export const MAX_SIGNALING_SERVERS = 5;

export function signalingServers(nodes: readonly NodeInfo[], key: string, region: string): SignalingServer[] {
  const ok = nodes.filter((n) => n.roles.includes('signal') && !n.draining && n.signal !== undefined && n.signal.length > 0);
  const local = rendezvousOrder(key, ok.filter((n) => n.region === region));
  const remote = rendezvousOrder(key, ok.filter((n) => n.region !== region));
  return [...local, ...remote].slice(0, MAX_SIGNALING_SERVERS).map((n) => ({ urls: [...(n.signal ?? [])] }));
}
