/**
 * Every metric of p2pd, defined once (docs/reference.md "Metrics"). Label values come from small fixed sets:
 * never a user id, session id or IP. Workers keep their own copy of this registry; the primary
 * merges them for /metrics (see aggregate.ts).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const registry = new Registry();

/**
 * A count bumped on the packet hot path: a plain number increment (prom-client's `inc` hashes its
 * labels on every call), folded into its counter when the registry is scraped.
 */
export interface HotCounter {
  count: number;
  reported: number;
  readonly labels: Partial<Record<string, string>>;
}

const hotCounters = new Map<Counter<string>, HotCounter[]>();
const beforeFolds = new Map<Counter<string>, (() => void)[]>();

/** A hot-path count for `counter` with fixed `labels`; the counter must fold them (see below). */
export function hotCounter(counter: Counter<string>, labels: Partial<Record<string, string>> = {}): HotCounter {
  const h: HotCounter = { count: 0, reported: 0, labels };
  const list = hotCounters.get(counter) ?? [];
  list.push(h);
  hotCounters.set(counter, list);
  return h;
}

/**
 * Runs `update` before `counter` folds its hot-path counts at a scrape: for counts kept elsewhere
 * and brought in on demand (the TURN forwarding table's, src/turn/forwarder.ts).
 */
export function beforeFold(counter: Counter<string>, update: () => void): void {
  const list = beforeFolds.get(counter) ?? [];
  list.push(update);
  beforeFolds.set(counter, list);
}

/** `collect` hook of counters that have hot-path counts. */
function foldHot(this: Counter<string>): void {
  for (const update of beforeFolds.get(this) ?? []) update();
  for (const h of hotCounters.get(this) ?? []) {
    const delta = h.count - h.reported;
    if (delta > 0) this.inc(h.labels, delta);
    h.reported = h.count;
  }
}

export function enableDefaultMetrics(): void {
  collectDefaultMetrics({ register: registry });
}

// --- STUN
export const stunRequestsTotal = new Counter({
  name: 'stun_requests_total',
  help: 'STUN Binding requests by outcome (success, error, dropped) and region',
  labelNames: ['status', 'region'] as const,
  registers: [registry],
  collect: foldHot,
});
export const stunDroppedTotal = new Counter({
  name: 'stun_dropped_packets_total',
  help: 'Packets dropped by the STUN/TURN listeners, by reason',
  labelNames: ['reason'] as const,
  registers: [registry],
  collect: foldHot,
});

// --- STUN/TURN TCP and TLS connections (transport area: src/transport/streamGuard.ts, docs/turn.md "Connection limits")
export const stunStreamConnections = new Gauge({
  name: 'stun_stream_connections', help: 'Open STUN/TURN client connections, by transport (tcp, tls; TLS once its handshake is done)',
  labelNames: ['transport'] as const, registers: [registry],
});
export const stunStreamPaused = new Gauge({
  name: 'stun_stream_paused', help: 'STUN/TURN TCP/TLS connections not read now because the client does not take our answers (backpressure), by transport',
  labelNames: ['transport'] as const, registers: [registry],
});
export const stunStreamClosedTotal = new Counter({
  name: 'stun_stream_closed_total',
  help: 'STUN/TURN TCP and TLS connections the server closed, by transport and reason (write_backlog, write_stalled, idle, per_source, malformed, frame_too_large, tls_handshake_timeout, tls_handshake_failed)',
  labelNames: ['transport', 'reason'] as const, registers: [registry],
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
  collect: foldHot,
});
export const turnForwardedPacketsTotal = new Counter({
  name: 'turn_forwarded_packets_total',
  help: 'Relay datagrams the forwarding table in the addon sent without entering JS, by direction (client_to_peer, peer_to_client); included in turn_relay_bytes_total',
  labelNames: ['direction'] as const,
  registers: [registry],
  collect: foldHot,
});
export const turnDroppedTotal = new Counter({
  name: 'turn_dropped_packets_total',
  help: 'Relay packets dropped, by reason (bandwidth, no_permission, no_allocation, no_channel, malformed, backpressure, peer_forbidden)',
  labelNames: ['reason'] as const,
  registers: [registry],
  collect: foldHot,
});
export const turnAuthFailuresTotal = new Counter({
  name: 'turn_auth_failures_total',
  help: 'TURN requests refused for authentication, by reason',
  labelNames: ['reason'] as const,
  registers: [registry],
});

// --- TURN bounds (area turn, issue 10): what one client or principal can make the relay hold
export const turnLimitRefusalsTotal = new Counter({
  name: 'turn_limit_refusals_total',
  help: 'TURN requests refused by a bound, by limit (permissions, channels, user_quota, principal_quota, max_allocations, relay_ports, session_closed, unavailable)',
  labelNames: ['limit'] as const,
  registers: [registry],
});

// --- TURN peer policy (issue 10, area peers; docs/turn.md "Peer policy")
export const turnPeerRefusedTotal = new Counter({
  name: 'turn_peer_refused_total',
  help: 'CreatePermission/ChannelBind refused with 403, by reason (denied, deny_peer, own_address, own_port)',
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
let sessionsActiveSource: (() => Promise<number>) | undefined;
let lastSessionsActive = 0;
/** Where `sessions_active` is read from at each scrape (the session store's open count). */
export function setSessionsActiveSource(source: (() => Promise<number>) | undefined): void {
  sessionsActiveSource = source;
}
export const sessionsActive = new Gauge({
  name: 'sessions_active',
  help: 'Sessions not closed (with Redis: cluster-wide, the same on every node: aggregate with max)',
  registers: [registry],
  async collect() {
    if (!sessionsActiveSource) return;
    try {
      lastSessionsActive = await sessionsActiveSource();
    } catch {
      // The store did not answer: keep the last value (session_store_errors_total counts the failure).
    }
    this.set(lastSessionsActive);
  },
});
export const sessionsCreatedTotal = new Counter({
  name: 'sessions_created_total', help: 'Sessions created through this node', registers: [registry],
});
export const sessionsClosedTotal = new Counter({
  name: 'sessions_closed_total', help: 'Sessions closed by this node, by reason (bye, deleted, timeout, swept, error)',
  labelNames: ['reason'] as const, registers: [registry],
});
export const sessionSweepSeconds = new Histogram({
  name: 'session_sweep_seconds', help: 'Duration of one sweep for stale sessions',
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10], registers: [registry],
});
export const sessionStoreErrorsTotal = new Counter({
  name: 'session_store_errors_total', help: 'Session store operations that failed because the store was unavailable',
  registers: [registry],
});
export const clusterNodesHealthy = new Gauge({
  name: 'cluster_nodes_healthy', help: 'Nodes with a fresh heartbeat in the registry, by role',
  labelNames: ['role'] as const, registers: [registry],
});

// --- Signaling details (src/signaling, src/broker)
export const signalingOfferAnswerSeconds = new Histogram({
  name: 'signaling_offer_answer_seconds', help: "From a session's offer to its answer, as the service received them",
  buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry],
});
export const signalingErrorsTotal = new Counter({
  name: 'signaling_errors_total', help: 'Signaling messages refused, by error code (BAD_JSON, FORBIDDEN, DEVICE_OFFLINE, …)',
  labelNames: ['code'] as const, registers: [registry],
});
export const signalingDuplicatesTotal = new Counter({
  name: 'signaling_duplicates_total', help: 'Retried signaling messages (same sender and msgId) dropped or ignored',
  registers: [registry],
});
export const mqttClientsConnected = new Gauge({
  name: 'mqtt_clients_connected', help: 'Clients connected to the embedded MQTT broker, by transport (tcp, ws)',
  labelNames: ['transport'] as const, registers: [registry],
});
export const devicesOnline = new Gauge({
  name: 'devices_online', help: 'Devices whose presence is online, as this node sees it', registers: [registry],
});

// --- Issue 10, area mqtt: bounds of the embedded broker before and after login (src/broker)
export const mqttConnectionsRefusedTotal = new Counter({
  name: 'mqtt_connections_refused_total',
  help: 'MQTT connections the embedded broker refused or closed: connect_too_large, packet_too_large, bad_header (fixed header), preauth_per_source, client_id_taken, token_expired, draining, logins_in_flight, login_wait, login_timeout, max_connections',
  labelNames: ['reason'] as const, registers: [registry],
});
export const mqttMaxConnections = new Gauge({
  name: 'mqtt_max_connections',
  help: 'MQTT connections this node holds at most (--mqtt-max-connections, by default from its open-file limit); 0 = unbounded',
  registers: [registry],
});
export const mqttLoginsInFlight = new Gauge({
  name: 'mqtt_logins_in_flight',
  help: 'MQTT logins (CONNECT to CONNACK) under way at the embedded broker; at most --mqtt-max-logins-in-flight',
  registers: [registry],
});
export const mqttLoginsWaiting = new Gauge({
  name: 'mqtt_logins_waiting',
  help: 'MQTT logins (token checked) waiting for one of the --mqtt-max-logins-in-flight at the embedded broker; at most --mqtt-max-logins-waiting, each up to --mqtt-login-wait',
  registers: [registry],
});
/** Store writes of the broker fabric that failed (src/broker/fabric.ts, docs/signaling.md). */
export const mqttStoreErrorsTotal = new Counter({
  name: 'mqtt_store_errors_total',
  help: 'Redis writes of the broker fabric that failed, by operation: enqueue (a QoS 1 message queued for persistent sessions), retain (a retained message), both tried once more when Redis answers; delivery (the packet id of a QoS 1 message sent to a persistent session: the message is sent anyway)',
  labelNames: ['operation'] as const, registers: [registry],
});

// --- HTTP exposure bounds (issue 10, area http: src/api/rateLimit.ts, src/api/devToken.ts, src/broker/routes.ts)
export const httpRateLimitedTotal = new Counter({
  name: 'http_rate_limited_total', help: 'HTTP requests refused with 429 RATE_LIMITED, by budget (token, source)',
  labelNames: ['scope'] as const, registers: [registry],
});
export const httpRateLimitFallbackTotal = new Counter({
  name: 'http_rate_limit_fallback_total', help: 'Rate-limit checks decided by this node alone because Redis did not answer',
  registers: [registry],
});
export const sessionsRefusedTotal = new Counter({
  name: 'sessions_refused_total', help: 'Session creations refused by a bound, by code (TOO_MANY_SESSIONS, DEVICE_BUSY)',
  labelNames: ['code'] as const, registers: [registry],
});
export const httpRefusedTotal = new Counter({
  name: 'http_refused_total', help: 'HTTP requests refused before any work, by reason (DEV_TOKENS_LOOPBACK_ONLY, HOOK_FORBIDDEN, LOGIN_FAILED, LOGINS_RATE_LIMITED)',
  labelNames: ['code'] as const, registers: [registry],
});

// --- Issue 14, item 5: sleeping cameras (src/signaling/wake.ts, docs/operations.md "Sleeping cameras")
export const wakesTotal = new Counter({
  name: 'wakes_total', help: 'Session creations that waited for a sleeping device, by outcome (woke, timeout, refused: over the per-device or per-node bound)',
  labelNames: ['outcome'] as const, registers: [registry],
});
export const wakeHookFailuresTotal = new Counter({
  name: 'wake_hook_failures_total', help: 'Wake requests that could not be delivered, by hook (webhook, mqtt)',
  labelNames: ['hook'] as const, registers: [registry],
});

export const tlsReloadsTotal = new Counter({
  name: 'tls_reloads_total', help: 'Reloads of the TURN TLS certificate and key (SIGHUP or a change of the files), by result (ok, error; an error keeps the old pair)',
  labelNames: ['result'] as const, registers: [registry],
});
