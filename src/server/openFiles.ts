/**
 * How many MQTT connections a node takes by default (`--mqtt-max-connections`; docs/signaling.md
 * "Connections per node"): what its open-file limit leaves once the node's other files are set
 * aside. Each connection is a socket, and a socket is a file: a node that reaches its limit cannot
 * accept (the kernel refuses, silently), and neither can it open the Redis connections its fabric
 * and sessions need, so the clients it already holds suffer for the ones it could not take. The
 * scale bench saw this when a killed node's clients came to 5 nodes at 20,000 files each
 * (docs/performance.md "Scale-out").
 *
 * Linux tells the limit in /proc/self/limits (Node.js raises the soft limit to the hard one at
 * start); elsewhere it is unknown and the default is unbounded.
 */
import { readFileSync } from 'node:fs';

/** Files kept for everything but MQTT connections: Redis, HTTP API clients, TURN relays, logs. */
const RESERVE_MIN = 256;
/** … and at least this share of the limit. */
const RESERVE_SHARE = 1 / 8;

/** This process's open-file limit (the soft one), or undefined where it cannot be read or is unlimited. */
export function openFileLimit(limits = readLimits()): number | undefined {
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(limits ?? '');
  if (m === null || m[1] === 'unlimited') return undefined;
  return Number(m[1]);
}

function readLimits(): string | undefined {
  try {
    return readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * The MQTT connections that fit a limit of `openFiles`: the limit less a reserve of an eighth
 * (at least 256 files); 0 (unbounded) when the limit is unknown. A limit too small for any
 * connection still gives 1: the node works, one client at a time.
 */
export function defaultMaxConnections(openFiles: number | undefined): number {
  if (openFiles === undefined) return 0;
  const reserve = Math.max(RESERVE_MIN, Math.ceil(openFiles * RESERVE_SHARE));
  return Math.max(1, openFiles - reserve);
}
