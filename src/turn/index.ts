// The TURN relay (RFC 8656): allocations, permissions, channels, relay sockets, quotas, bandwidth.
export * from './fiveTuple.ts';
export * from './peerFilter.ts';
export * from './bandwidth.ts';
export * from './nonce.ts';
export * from './auth.ts';
export * from './authLimiter.ts';
export * from './reservations.ts';
export * from './reservationClient.ts';
export * from './channelData.ts';
export * from './channelBinding.ts';
export * from './permission.ts';
export * from './allocation.ts';
export * from './manager.ts';
export * from './relay.ts';
export * from './events.ts';
export * from './server.ts';
