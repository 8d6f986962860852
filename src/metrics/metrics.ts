/**
 * Every metric of p2pd, defined once (CONTRACT.md §5). Label values come from small fixed sets:
 * never a user id, session id or IP. Workers keep their own copy of this registry; the primary
 * merges them for /metrics (see aggregate.ts).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const registry = new Registry();

export function enableDefaultMetrics(): void {
  collectDefaultMetrics({ register: registry });
}

// --- STUN
export const stunRequestsTotal = new Counter({
  name: 'stun_requests_total',
  help: 'STUN Binding requests by outcome (success, error, dropped) and region',
  labelNames: ['status', 'region'] as const,
  registers: [registry],
});
export const stunDroppedTotal = new Counter({
  name: 'stun_dropped_packets_total',
  help: 'Packets dropped by the STUN/TURN listeners, by reason',
  labelNames: ['reason'] as const,
  registers: [registry],
});

// --- TURN
export const turnSessionsActive = new Gauge({
  name: 'turn_sessions_active', help: 'TURN allocations alive now', registers: [registry],
});
export const turnSessionsTotal = new Counter({
  name: 'turn_sessions_total', help: 'TURN allocations created', registers: [registry],
});
export const turnRelayBytesTotal = new Counter({
  name: 'turn_relay_bytes_total',
  help: 'Bytes relayed, by direction (client_to_peer, peer_to_client)',
  labelNames: ['direction'] as const,
  registers: [registry],
});
export const turnDroppedTotal = new Counter({
  name: 'turn_dropped_packets_total',
  help: 'Relay packets dropped, by reason (bandwidth, no_permission, no_allocation, malformed)',
  labelNames: ['reason'] as const,
  registers: [registry],
});
export const turnAuthFailuresTotal = new Counter({
  name: 'turn_auth_failures_total',
  help: 'TURN requests refused for authentication, by reason',
  labelNames: ['reason'] as const,
  registers: [registry],
});

// --- P2P outcomes (reported by peers' keepalives)
export const p2pConnectionAttemptsTotal = new Counter({
  name: 'p2p_connection_attempts_total', help: 'P2P connection attempts', registers: [registry],
});
export const p2pConnectionSuccessTotal = new Counter({
  name: 'p2p_connection_success_total', help: 'P2P connections that reached connected', registers: [registry],
});
export const p2pConnectionsTotal = new Counter({
  name: 'p2p_connections_total', help: 'Connected P2P sessions by path (direct, relay)',
  labelNames: ['path'] as const, registers: [registry],
});
export const p2pLatencySeconds = new Histogram({
  name: 'p2p_latency_seconds', help: 'Round trip time between peers as they report it',
  buckets: [0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry],
});
export const p2pSetupSeconds = new Histogram({
  name: 'p2p_setup_seconds', help: 'Time from session creation to a connected path',
  buckets: [0.25, 0.5, 1, 2, 3, 5, 10, 30], registers: [registry],
});
export const natTypeTotal = new Counter({
  name: 'nat_type_total', help: 'NAT types reported by peers', labelNames: ['type'] as const, registers: [registry],
});

// --- Signaling and sessions
export const signalingLatencySeconds = new Histogram({
  name: 'signaling_latency_seconds', help: "From a message's sender timestamp to the service's receipt",
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry],
});
export const signalingMessagesTotal = new Counter({
  name: 'signaling_messages_total', help: 'Signaling messages handled by type',
  labelNames: ['type'] as const, registers: [registry],
});
export const sessionsActive = new Gauge({
  name: 'sessions_active', help: 'Sessions not closed', registers: [registry],
});
