/**
 * RFC 5780 behaviours and the classic (RFC 3489) NAT types they map to. Pure logic, tested alone.
 */
export type Behaviour = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent';

export type ClassicNatType =
  | 'open internet'
  | 'full cone'
  | 'restricted cone'
  | 'port-restricted cone'
  | 'symmetric'
  | 'symmetric UDP firewall'
  | 'UDP blocked';

export interface NatBehaviour {
  /** False when the server did not answer at all. */
  readonly reachable: boolean;
  /** True when the mapped address equals the local one (no NAT in between). */
  readonly natted: boolean;
  readonly mapping: Behaviour | undefined;
  readonly filtering: Behaviour | undefined;
}

export function classify(b: NatBehaviour): ClassicNatType {
  if (!b.reachable) return 'UDP blocked';
  if (!b.natted) return b.filtering === 'endpoint-independent' ? 'open internet' : 'symmetric UDP firewall';
  if (b.mapping !== 'endpoint-independent') return 'symmetric';
  switch (b.filtering) {
    case 'endpoint-independent': return 'full cone';
    case 'address-dependent': return 'restricted cone';
    default: return 'port-restricted cone';
  }
}
