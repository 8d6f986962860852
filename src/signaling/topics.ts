/**
 * The topics of docs/signaling.md and the reserved names around them. Ids are already safe in
 * topics (auth/token.ts CLIENT_ID_PATTERN: no `/`, `+`, `#`).
 */
import type { ClientRole } from '../auth/token.ts';

export const SIGNAL_PREFIX = 'p2p/signal/';
export const PRESENCE_PREFIX = 'p2p/presence/device/';
/** Requests to the service (type `session`); answers come on the caller's own topic. */
export const SERVER_TOPIC = 'p2p/signal/server';
/** `from` of every message the service itself sends; no client may use this id. */
export const SERVER_ID = 'server';
/** Shared-subscription group of the signaling nodes on an external broker. */
export const SHARE_GROUP = 'p2pd';

export const PRESENCE_ONLINE = 'online';
export const PRESENCE_OFFLINE = 'offline';

export const appTopic = (appId: string): string => `p2p/signal/app/${appId}`;
export const deviceTopic = (deviceId: string): string => `p2p/signal/device/${deviceId}`;
export const presenceTopic = (deviceId: string): string => `${PRESENCE_PREFIX}${deviceId}`;
/** A client's own topic: where it subscribes and where the service answers it. */
export const ownTopic = (role: ClientRole, id: string): string => (role === 'app' ? appTopic(id) : deviceTopic(id));
/** `$share/p2pd/<filter>`: each message reaches one member of the group (MQTT 5 §4.8.2; Mosquitto and EMQX also for 3.1.1). */
export const sharedFilter = (filter: string, group = SHARE_GROUP): string => `$share/${group}/${filter}`;

export type ParsedTopic =
  | { readonly kind: 'peer'; readonly role: ClientRole; readonly id: string }
  | { readonly kind: 'server' }
  | { readonly kind: 'presence'; readonly id: string };

/** Reads a concrete topic (no wildcards); undefined for anything outside the protocol. */
export function parseTopic(topic: string): ParsedTopic | undefined {
  if (topic === SERVER_TOPIC) return { kind: 'server' };
  if (topic.startsWith(SIGNAL_PREFIX)) {
    const rest = topic.slice(SIGNAL_PREFIX.length);
    const slash = rest.indexOf('/');
    if (slash <= 0) return undefined;
    const role = rest.slice(0, slash);
    const id = rest.slice(slash + 1);
    if ((role !== 'app' && role !== 'device') || !isTopicLevel(id)) return undefined;
    return { kind: 'peer', role, id };
  }
  if (topic.startsWith(PRESENCE_PREFIX)) {
    const id = topic.slice(PRESENCE_PREFIX.length);
    return isTopicLevel(id) ? { kind: 'presence', id } : undefined;
  }
  return undefined;
}

function isTopicLevel(s: string): boolean {
  return s.length > 0 && !s.includes('/') && !s.includes('+') && !s.includes('#');
}
