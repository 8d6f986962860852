/**
 * Where a session goes: rendezvous (highest random weight) hashing of the session id over the
 * healthy TURN nodes of the caller's region. Every node computes the same answer from the same
 * registry view, both peers of a session get the node stored in its record, and when a node
 * leaves only its own sessions move.
 */
import { atCapacity, type NodeInfo } from './nodeInfo.ts';

/** 32-bit FNV-1a of `key`, `\0`, `nodeId`, finished with a murmur3 mix so close ids spread. */
export function hrwScore(key: string, nodeId: string): number {
  let h = 0x811c9dc5;
  const feed = (s: string): void => {
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
  };
  feed(key);
  feed('\0');
  feed(nodeId);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** `nodes` ordered by rendezvous score for `key`, best first (ties by id). */
export function rendezvousOrder<T extends { readonly id: string }>(key: string, nodes: readonly T[]): T[] {
  return nodes
    .map((n) => ({ n, s: hrwScore(key, n.id) }))
    .sort((a, b) => b.s - a.s || (a.n.id < b.n.id ? -1 : 1))
    .map((x) => x.n);
}

const canTakeTurn = (n: NodeInfo): boolean => n.roles.includes('turn') && !n.draining && !atCapacity(n);

/**
 * The TURN node for `key` (a session id): HRW over the region's nodes that can take a session;
 * when the region has none, over every region's. Undefined when no node can.
 */
export function pickTurnNode(nodes: readonly NodeInfo[], key: string, region: string): NodeInfo | undefined {
  const ok = nodes.filter(canTakeTurn);
  const local = ok.filter((n) => n.region === region);
  return rendezvousOrder(key, local.length > 0 ? local : ok)[0];
}

/**
 * Where a draining node sends new allocations (300 Try Alternate, docs/turn.md "Draining"): the
 * TURN node the HRW order of its own id picks among the others that can take sessions, in its
 * region first. Undefined when none can (the node then keeps allocating).
 */
export function pickAlternateTurn(nodes: readonly NodeInfo[], self: NodeInfo): NodeInfo | undefined {
  return pickTurnNode(nodes.filter((n) => n.id !== self.id), self.id, self.region);
}

/**
 * STUN servers for `key`, nearest first: the caller's region's choice, then one from another
 * region as a fallback (ICE gathering survives a region whose STUN is unreachable).
 */
export function pickStunNodes(nodes: readonly NodeInfo[], key: string, region: string): NodeInfo[] {
  const stun = nodes.filter((n) => n.roles.includes('stun') && !n.draining);
  const local = stun.filter((n) => n.region === region);
  const primary = rendezvousOrder(key, local.length > 0 ? local : stun)[0];
  if (!primary) return [];
  const fallback = rendezvousOrder(key, stun.filter((n) => n.region !== primary.region))[0];
  return fallback ? [primary, fallback] : [primary];
}
