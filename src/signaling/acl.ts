/**
 * The topic rights of docs/signaling.md, written once as rules and used three ways: the embedded
 * broker checks them directly, Mosquitto receives them as a dynamic-security role, EMQX as the
 * `acl` of its HTTP authentication answer. Everything not allowed here is denied.
 *
 * An app subscribes to its own topic and to the presence of the devices its token names, and
 * publishes to those devices and to the service. A device subscribes to its own topic, publishes
 * to apps (the session check decides which app may hear it), to the service, and its own
 * presence (retained).
 */
import type { ClientClaims } from '../auth/token.ts';
import { SERVER_TOPIC, appTopic, deviceTopic, presenceTopic } from './topics.ts';

export interface AclRule {
  readonly action: 'publish' | 'subscribe';
  /** A topic filter (may hold `+`); for subscribe, the filters it covers. */
  readonly topic: string;
  /** Publish only: the message may be retained. */
  readonly retain?: boolean;
}

export function aclRules(claims: Pick<ClientClaims, 'sub' | 'role' | 'devices'>): AclRule[] {
  if (claims.role === 'device') {
    return [
      { action: 'subscribe', topic: deviceTopic(claims.sub) },
      { action: 'publish', topic: appTopic('+') },
      { action: 'publish', topic: SERVER_TOPIC },
      { action: 'publish', topic: presenceTopic(claims.sub), retain: true },
    ];
  }
  const rules: AclRule[] = [
    { action: 'subscribe', topic: appTopic(claims.sub) },
    { action: 'publish', topic: SERVER_TOPIC },
  ];
  const devices = claims.devices.includes('*') ? ['+'] : claims.devices;
  for (const d of devices) {
    rules.push({ action: 'publish', topic: deviceTopic(d) }, { action: 'subscribe', topic: presenceTopic(d) });
  }
  return rules;
}

/** MQTT topic matching of a concrete topic against a filter (`+` one level, `#` the rest). */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.startsWith('$') !== filter.startsWith('$')) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}

/** True when every topic `inner` (a subscription filter) can match also matches `outer`. */
export function filterCovers(outer: string, inner: string): boolean {
  const o = outer.split('/');
  const n = inner.split('/');
  for (let i = 0; i < o.length; i++) {
    const level = o[i];
    if (level === '#') return true;
    if (i >= n.length) return false;
    const lv = n[i];
    if (lv === '#') return false;
    if (level === '+') continue;
    if (lv === '+' || lv !== level) return false;
  }
  return o.length === n.length;
}

export function mayPublish(rules: readonly AclRule[], topic: string, retain: boolean): boolean {
  return rules.some((r) => r.action === 'publish' && topicMatches(r.topic, topic) && (!retain || r.retain === true));
}

export function maySubscribe(rules: readonly AclRule[], filter: string): boolean {
  return rules.some((r) => r.action === 'subscribe' && filterCovers(r.topic, filter));
}
