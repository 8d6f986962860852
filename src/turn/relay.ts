/**
 * The data plane (docs/turn.md "Workers and speed"): ChannelData and Send indications from clients to
 * peers, datagrams from peers back to clients as ChannelData or Data indications. Per datagram:
 * no closures, no objects of ours beyond the views the socket APIs need, map lookups by number,
 * counters that are plain increments; refusals are counted, never logged.
 */
import { randomBytes } from 'node:crypto';
import { Attr, Method, MessageClass, MessageWriter, messageType, type TransportAddress } from '../stun/index.ts';
import type { Ingress } from '../transport/ingress.ts';
import type { Allocation, LaterSender } from './allocation.ts';
import type { ChannelBinding } from './channelBinding.ts';
import { CHANNEL_DATA_HEADER, streamPadding } from './channelData.ts';
import { ipv4ToNumber, numberToIpv4, peerKey4, peerKey6 } from './fiveTuple.ts';
import type { Forwarder } from './forwarder.ts';
import type { AllocationManager } from './manager.ts';
import type { PeerPolicy } from './peerPolicy.ts';

const DATA_INDICATION = messageType(Method.Data, MessageClass.Indication);
const ZEROS = Buffer.alloc(4);
/** Past this many bytes waiting in a TCP/TLS connection, relayed data for it is dropped. */
const MAX_STREAM_BACKLOG = 512 * 1024;

export type DropReason = 'bandwidth' | 'no_permission' | 'no_allocation' | 'no_channel' | 'malformed' | 'backpressure' | 'peer_forbidden';

export const DROP_REASONS: readonly DropReason[] = [
  'bandwidth', 'no_permission', 'no_allocation', 'no_channel', 'malformed', 'backpressure', 'peer_forbidden',
];

/** A count on the packet path: a plain increment, read by whoever handed it in (server/turnMetrics.ts). */
export interface PacketCount {
  count: number;
}

/**
 * What the relay counts: payload bytes each way and datagrams dropped, by reason; and the
 * datagrams the addon's forwarding table sent each way (set from its totals: forwarder.ts).
 */
export interface RelayCounters {
  readonly toPeer: PacketCount;
  readonly toClient: PacketCount;
  readonly drops: Readonly<Record<DropReason, PacketCount>>;
  readonly forwardedToPeer: PacketCount;
  readonly forwardedToClient: PacketCount;
}

/** Counters nobody reads yet (a server without metrics, a test). */
export function plainRelayCounters(): RelayCounters {
  const drops = {} as Record<DropReason, PacketCount>;
  for (const r of DROP_REASONS) drops[r] = { count: 0 };
  return { toPeer: { count: 0 }, toClient: { count: 0 }, drops, forwardedToPeer: { count: 0 }, forwardedToClient: { count: 0 } };
}

export class Relay {
  private readonly manager: AllocationManager;
  private readonly peers: PeerPolicy;
  private readonly toPeer: PacketCount;
  private readonly toClient: PacketCount;
  readonly drops: Readonly<Record<DropReason, PacketCount>>;
  readonly counters: RelayCounters;
  /** Reused argument of `socket.send([header, payload])`: the sockets copy the list itself. */
  private readonly pair: Buffer[] = [ZEROS, ZEROS];
  private readonly triple: Buffer[] = [ZEROS, ZEROS, ZEROS];
  private readonly writer = new MessageWriter(128);
  private readonly peer: { family: 4 | 6; address: string; port: number } = { family: 4, address: '', port: 0 };
  /** Data indications carry a fresh transaction id: random bytes with a counter in front. */
  private readonly tid = randomBytes(12);
  private tidCounter = 0;
  /** Peer datagrams arrive in a buffer that is reused after the call (the batched relay sockets). */
  transientPeerData = false;
  /** Takes over channels once they relayed a datagram here (forwarder.ts); undefined without the addon. */
  forwarder: Forwarder | undefined;

  constructor(manager: AllocationManager, peers: PeerPolicy, counters: RelayCounters) {
    this.manager = manager;
    this.peers = peers;
    this.toPeer = counters.toPeer;
    this.toClient = counters.toClient;
    this.drops = counters.drops;
    this.counters = counters;
  }

  /** Client → peer: one ChannelData frame (RFC 8656 §12.6). */
  onChannelData(buf: Buffer, source: TransportAddress, ingress: Ingress): void {
    const a = this.manager.find(source, ingress);
    if (a === undefined) {
      this.drops.no_allocation.count++;
      return;
    }
    const len = buf.readUInt16BE(2);
    if (CHANNEL_DATA_HEADER + len > buf.length) {
      this.drops.malformed.count++;
      return;
    }
    const ch = a.channels.get(buf.readUInt16BE(0));
    if (ch === undefined) {
      this.drops.no_channel.count++;
      return;
    }
    // A channel to an own address: its port must still be a live relay port (peerPolicy.ts).
    if (ch.guarded && !this.peers.mayReach(ch.family, ch.ip4, ch.address, ch.port)) {
      this.drops.peer_forbidden.count++;
      return;
    }
    if (a.bucket !== undefined && !a.bucket.take(len)) {
      this.drops.bandwidth.count++;
      return;
    }
    a.bytesRelayed += len;
    this.toPeer.count += len;
    ch.relay.send(buf, CHANNEL_DATA_HEADER, len, ch.port, ch.ip4, ch.address);
    this.forwarder?.offer(a, ch);
  }

  /** Client → peer: the DATA of a Send indication (RFC 8656 §11.4). */
  sendToPeer(a: Allocation, peer: TransportAddress, data: Buffer): void {
    const relay = a.relayFor(peer.family);
    if (relay === undefined) {
      this.drops.malformed.count++;
      return;
    }
    const ip4 = peer.family === 4 ? ipv4ToNumber(peer.address) : -1;
    if (peer.family === 4 ? !a.perms4.has(ip4) : a.perms6?.has(peer.address) !== true) {
      this.drops.no_permission.count++;
      return;
    }
    // The permission is per IP (RFC 8656 §9); an own address is a peer only at a live relay port.
    if (!this.peers.mayReach(peer.family, ip4, peer.address, peer.port)) {
      this.drops.peer_forbidden.count++;
      return;
    }
    if (a.bucket !== undefined && !a.bucket.take(data.length)) {
      this.drops.bandwidth.count++;
      return;
    }
    a.bytesRelayed += data.length;
    this.toPeer.count += data.length;
    relay.port.send(data, 0, data.length, peer.port, ip4, peer.address);
  }

  /**
   * Peer → client: `buf[off, off + len)` arrived on one of the allocation's relay sockets from
   * the peer `ip4` (IPv4 as a number, else -1 with `address` IPv6 text) and `port`
   * (RFC 8656 §11.6, §12.6).
   */
  onPeerDatagram(a: Allocation, buf: Buffer, off: number, len: number, family: 4 | 6, ip4: number, address: string, port: number): void {
    let ch: ChannelBinding | undefined;
    if (family === 4) {
      if (!a.perms4.has(ip4)) {
        this.drops.no_permission.count++;
        return;
      }
      ch = a.chan4.get(peerKey4(ip4, port));
    } else {
      if (a.perms6?.has(address) !== true) {
        this.drops.no_permission.count++;
        return;
      }
      ch = a.chan6?.get(peerKey6(address, port));
    }
    if (a.bucket !== undefined && !a.bucket.take(len)) {
      this.drops.bandwidth.count++;
      return;
    }
    a.bytesRelayed += len;
    this.toClient.count += len;
    if (ch !== undefined) {
      this.channelDataToClient(a, ch, buf, off, len);
      this.forwarder?.offer(a, ch);
    } else this.dataIndicationToClient(a, family, family === 4 ? numberToIpv4(ip4) : address, port, buf, off, len);
  }

  private channelDataToClient(a: Allocation, ch: ChannelBinding, buf: Buffer, off: number, len: number): void {
    const udp = a.udp;
    if (udp !== undefined) {
      let h = ch.header;
      let payload = buf.subarray(off, off + len);
      // dgram may keep what it is given past `send` (queued behind a full socket buffer): then
      // the reused header and a transient peer buffer must not be handed over. Nothing is queued
      // while the queue is empty before the send (uv_udp_try_send); the batch socket copies.
      if (a.udpMayQueue && (this.transientPeerData || udp.getSendQueueCount() !== 0)) {
        h = Buffer.allocUnsafe(CHANNEL_DATA_HEADER);
        h.writeUInt16BE(ch.number, 0);
        if (this.transientPeerData) payload = Buffer.from(payload);
      }
      h.writeUInt16BE(len, 2);
      const pair = this.pair;
      pair[0] = h;
      pair[1] = payload;
      sendToClient(a, udp, pair);
      return;
    }
    const stream = this.writableStream(a);
    if (stream === undefined) return;
    // RFC 8656 §12.5: over TCP/TLS, ChannelData is padded to a multiple of 4 bytes.
    const pad = streamPadding(len);
    const out = Buffer.allocUnsafe(CHANNEL_DATA_HEADER + len + pad);
    out.writeUInt16BE(ch.number, 0);
    out.writeUInt16BE(len, 2);
    buf.copy(out, CHANNEL_DATA_HEADER, off, off + len);
    if (pad > 0) out.fill(0, CHANNEL_DATA_HEADER + len);
    stream.write(out);
  }

  /** A Data indication (RFC 8656 §11.6) for a peer without a channel: the slower path. */
  private dataIndicationToClient(a: Allocation, family: 4 | 6, address: string, port: number, buf: Buffer, off: number, len: number): void {
    const peer = this.peer;
    peer.family = family;
    peer.address = address;
    peer.port = port;
    this.tid.writeUInt32BE(this.tidCounter = (this.tidCounter + 1) >>> 0, 0);
    const w = this.writer.reset(DATA_INDICATION, this.tid).addXorAddress(Attr.XorPeerAddress, peer);
    const head = w.finish();
    const pad = (4 - (len & 3)) & 3;
    const prefix = Buffer.allocUnsafe(head.length + 4);
    head.copy(prefix, 0);
    prefix.writeUInt16BE(Attr.Data, head.length);
    prefix.writeUInt16BE(len, head.length + 2);
    prefix.writeUInt16BE(head.length - 20 + 4 + len + pad, 2);
    let payload = buf.subarray(off, off + len);
    const udp = a.udp;
    if (udp !== undefined) {
      if (a.udpMayQueue && this.transientPeerData) payload = Buffer.from(payload);
      const t = this.triple;
      t[0] = prefix;
      t[1] = payload;
      t[2] = ZEROS.subarray(0, pad);
      sendToClient(a, udp, t);
      return;
    }
    const stream = this.writableStream(a);
    if (stream === undefined) return;
    stream.write(Buffer.concat([prefix, payload, ZEROS.subarray(0, pad)]));
  }

  /** The client's TCP/TLS stream when it can take more; a stream backed up past the limit drops. */
  private writableStream(a: Allocation): Allocation['stream'] {
    const stream = a.stream;
    if (stream !== undefined && stream.writableLength > MAX_STREAM_BACKLOG) {
      this.drops.backpressure.count++;
      return undefined;
    }
    return stream;
  }
}

/** One datagram to the allocation's client over UDP: batched (`sendLater`) where the socket can. */
function sendToClient(a: Allocation, udp: NonNullable<Allocation['udp']>, parts: Buffer[]): void {
  if (a.udpSendLater) (udp as unknown as LaterSender).sendLater(parts, a.client.port, a.client.address);
  else udp.send(parts, a.client.port, a.client.address);
}
