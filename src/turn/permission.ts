/**
 * Permissions (RFC 8656 §9): an allocation relays to and from a peer IP address only while it
 * holds a permission for it — port ignored — installed by CreatePermission or ChannelBind and
 * lasting 5 minutes unless refreshed. Stored per allocation as IP key → expiry (seconds), the key
 * being the IPv4 address as a number or the IPv6 address as text. The lifetime is the server's
 * `permissionLifetimeSec` (--permission-lifetime).
 */

/** Deletes entries expired at `nowSec`; returns how many went. */
export function pruneExpired<K>(map: Map<K, number>, nowSec: number): number {
  let n = 0;
  for (const [k, expiresAt] of map) {
    if (expiresAt <= nowSec) {
      map.delete(k);
      n++;
    }
  }
  return n;
}
