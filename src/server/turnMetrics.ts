/**
 * The TURN metrics (docs/turn.md "Metrics"), fed from what the TURN server tells: its events for
 * allocations and refusals (turn/events.ts), and the relay's packet counters, handed to it as
 * counts that the registry folds in at each scrape.
 */
import type { TurnEvents } from '../turn/events.ts';
import { DROP_REASONS, type DropReason, type PacketCount, type RelayCounters } from '../turn/relay.ts';
import {
  beforeFold, hotCounter, turnAuthFailuresTotal, turnDroppedTotal, turnForwardedPacketsTotal, turnLimitRefusalsTotal,
  turnPeerRefusedTotal, turnRelayBytesTotal, turnSessionsActive, turnSessionsTotal,
} from '../metrics/metrics.ts';

/** Counts what `events` tells into turn_sessions_*, turn_auth_failures_total, turn_limit_refusals_total, turn_peer_refused_total. */
export function countTurnEvents(events: TurnEvents): void {
  events.on('allocationCreated', () => {
    turnSessionsActive.inc();
    turnSessionsTotal.inc();
  });
  events.on('allocationDeleted', () => turnSessionsActive.dec());
  events.on('authRefused', (reason) => turnAuthFailuresTotal.labels(reason).inc());
  events.on('limitRefused', (limit) => turnLimitRefusalsTotal.labels(limit).inc());
  events.on('peerRefused', (reason) => turnPeerRefusedTotal.labels(reason).inc());
}

/**
 * The relay's counters, as turn_relay_bytes_total{direction}, turn_dropped_packets_total{reason}
 * and turn_forwarded_packets_total{direction}.
 */
export function turnRelayCounters(): RelayCounters {
  const drops = {} as Record<DropReason, PacketCount>;
  for (const reason of DROP_REASONS) drops[reason] = hotCounter(turnDroppedTotal, { reason });
  return {
    toPeer: hotCounter(turnRelayBytesTotal, { direction: 'client_to_peer' }),
    toClient: hotCounter(turnRelayBytesTotal, { direction: 'peer_to_client' }),
    drops,
    forwardedToPeer: hotCounter(turnForwardedPacketsTotal, { direction: 'client_to_peer' }),
    forwardedToClient: hotCounter(turnForwardedPacketsTotal, { direction: 'peer_to_client' }),
  };
}

/**
 * Brings in what the forwarding table relayed (`collect`: TurnServer.collectForwarded) at each
 * scrape, before turn_relay_bytes_total and turn_forwarded_packets_total are read.
 */
export function foldForwardedAtScrape(collect: () => void): void {
  beforeFold(turnRelayBytesTotal, collect);
  beforeFold(turnForwardedPacketsTotal, collect);
}
