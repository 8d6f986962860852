/**
 * What the connectivity lab should see in theory: for each pair of NAT kinds (camera, app), whether
 * hole punching can open a direct UDP path, the share of direct paths a field mix of NATs allows,
 * and the classic NAT type `p2pd nat-type` should report behind each kind. Pure, tested alone.
 */
import type { ClassicNatType } from '../src/nat/classify.ts';

/** The lab's NAT kinds, in the order tables and heatmaps use. */
export const NAT_KINDS = ['none', 'full-cone', 'address-restricted', 'port-restricted', 'symmetric', 'udp-blocked'] as const;
export type NatKind = (typeof NAT_KINDS)[number];

/**
 * RFC 5128 §3.3 (UDP hole punching): each side sends to the other's server-reflexive address, as
 * learned from STUN. That only reaches the peer when the sender's NAT keeps that mapping for the
 * peer too (RFC 4787 §4.1 endpoint-independent mapping), or when the receiver's filter lets in
 * packets from an unexpected port of the sender's address (RFC 4787 §5: endpoint-independent or
 * address-dependent filtering); the receiver then learns the real port as a peer-reflexive
 * candidate (RFC 8445 §7.3.1.3) and answers it. A symmetric NAT (address-and-port-dependent
 * mapping) sends from a port nobody could predict, so against another symmetric NAT or a
 * port-restricted cone (address-and-port-dependent filtering) both directions are dropped. With
 * UDP blocked there is nothing to punch: only TURN over TCP/TLS on 80/443 is left.
 */
export function directPossible(camera: NatKind, app: NatKind): boolean {
  if (camera === 'udp-blocked' || app === 'udp-blocked') return false;
  const unpredictable = (a: NatKind, b: NatKind): boolean => a === 'symmetric' && (b === 'symmetric' || b === 'port-restricted');
  return !unpredictable(camera, app) && !unpredictable(app, camera);
}

/** Share of devices behind each NAT kind; the shares of the kinds present sum to 1. */
export type NatMix = Readonly<Record<NatKind, number>>;

/** The field mix the seed gives (15 % full cone, 25 % restricted cone, 35 % port-restricted, 25 % symmetric). */
export const SEED_MIX: NatMix = {
  none: 0,
  'full-cone': 0.15,
  'address-restricted': 0.25,
  'port-restricted': 0.35,
  symmetric: 0.25,
  'udp-blocked': 0,
};

/** Weight of the pair (camera, app) when cameras and apps both follow `mix`, independently. */
export function pairWeight(mix: NatMix, camera: NatKind, app: NatKind): number {
  return mix[camera] * mix[app];
}

/** Share of (camera, app) pairs with a direct path in theory: 0.7625 for SEED_MIX. */
export function theoreticalDirectShare(mix: NatMix): number {
  let share = 0;
  for (const camera of NAT_KINDS) {
    for (const app of NAT_KINDS) if (directPossible(camera, app)) share += pairWeight(mix, camera, app);
  }
  return share;
}

/**
 * The classic type `p2pd nat-type` (src/nat/classify.ts) should report behind each kind: the
 * RFC 4787 mapping and filtering the lab's NAT emulates, named as in RFC 3489.
 */
export const EXPECTED_NAT_TYPE: Readonly<Record<NatKind, ClassicNatType>> = {
  none: 'open internet',
  'full-cone': 'full cone',
  'address-restricted': 'restricted cone',
  'port-restricted': 'port-restricted cone',
  symmetric: 'symmetric',
  'udp-blocked': 'UDP blocked',
};

/**
 * Whether a NAT type an SDK reported is right for `kind`: the exact classic type, or, from a stack
 * that can test only the mapping (the browser, docs/client.md "NAT type"), `cone` for every kind
 * whose mapping is endpoint-independent. `unknown` is no report at all.
 */
export function natTypeRight(kind: NatKind, reported: string): boolean {
  if (reported === EXPECTED_NAT_TYPE[kind]) return true;
  return reported === 'cone' && (kind === 'none' || kind === 'full-cone' || kind === 'address-restricted' || kind === 'port-restricted');
}
