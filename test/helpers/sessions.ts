/**
 * Session creation for tests that run a part of a node without its cluster: the production
 * creation (src/session/actions.ts) over a cluster of one node that has every role, so a
 * `session` request over MQTT gets what `POST /v1/sessions` would give.
 */
import type { NodeInfo } from '../../src/cluster/nodeInfo.ts';
import { sessionActions, type SessionActions } from '../../src/session/actions.ts';
import type { SessionStore } from '../../src/session/store.ts';

export interface OneNodeOptions {
  readonly nodeId?: string;
  readonly region?: string;
  /** Where the node's STUN/TURN is advertised. */
  readonly host?: string;
  readonly port?: number;
  readonly authSecret?: string;
  readonly sessionTtlSec?: number;
}

export function oneNodeSessions(store: SessionStore, opts: OneNodeOptions = {}): SessionActions {
  const region = opts.region ?? 'default';
  const node: NodeInfo = {
    id: opts.nodeId ?? 'n1', region, roles: ['stun', 'turn', 'signal', 'api'],
    host: opts.host ?? '127.0.0.1', port: opts.port ?? 3478,
    load: { allocations: 0, bps: 0 }, capacity: { allocations: 0, bps: 0 }, draining: false,
    heartbeatAt: Date.now(), heartbeatMs: 5000,
  };
  return sessionActions({
    store,
    cluster: { nodes: () => [{ ...node, heartbeatAt: Date.now() }], regionOf: () => region },
    authSecret: opts.authSecret ?? 'test-turn-secret',
    sessionTtlSec: opts.sessionTtlSec ?? 600,
  });
}
