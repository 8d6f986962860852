/**
 * The udpbatch addon (src/transport/native/udpbatch.c: recvmmsg/sendmmsg) and a group of its UDP
 * sockets. A group shares one receive buffer, one send buffer and one handler among its sockets:
 * a listener socket is a group of one (`BatchUdpSocket`), a worker's TURN relay sockets are one
 * group of thousands (src/turn/relayPorts.ts). Only the I/O is here; which datagram may pass and
 * where it goes is decided by the users.
 *
 * Receiving: a readable socket is drained in batches; `onBatch(sock, n)` then reads datagrams
 * 0..n-1 through `offset`, `length`, `port`, `family`, … — valid only during the call.
 * Sending: `queue` copies a datagram into the next send slot (sending the full set first when
 * none is left); `flush` sends what is queued now, one sendmmsg per socket, and `flushSoon` at
 * the end of this event-loop turn.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../stun/ip.ts';

interface NativeGroup {
  readonly handle: unknown;
  readonly rx: ArrayBuffer;
  readonly rxMeta: ArrayBuffer;
  readonly tx: ArrayBuffer;
  readonly txMeta: ArrayBuffer;
}

export interface UdpBatchAddon {
  group(slotBytes: number, maxRounds: number, onBatch: (sock: number, n: number) => void): NativeGroup;
  open(handle: unknown, address: string, port: number, reusePort: boolean, ipv6Only: boolean, bufferBytes: number): { sock: number; port: number };
  close(handle: unknown, sock: number): void;
  closeGroup(handle: unknown): void;
  flush(handle: unknown, n: number): void;
  stats(handle: unknown): [number, number, number];
  /** The forwarding table (udpbatch.c "forwarding table"; src/turn/forwarder.ts drives it). */
  forwarder(): unknown;
  attach(handle: unknown, forwarder: unknown, role: 1 | 2): void;
  allocate(forwarder: unknown): number;
  offer(forwarder: unknown, id: number, clientGroup: unknown, clientSock: number, clientAddress: string, clientPort: number,
    relayGroup: unknown, relaySock: number, peerAddress: string, peerPort: number, channel: number, creditBytes: number, validMs: number): boolean;
  unbind(forwarder: unknown, id: number, channel: number): void;
  release(forwarder: unknown, id: number): [number, number];
  collect(forwarder: unknown, out: Float64Array): number;
  prune(forwarder: unknown): number;
  forwarderStats(forwarder: unknown): [number, number, number];
  /** Datagrams per batch: receive and send slots of a group. */
  readonly BATCH: number;
  /** int32s of meta per slot: [sock, len, port, family, ip0..ip3, flags (1 truncated, 2 forwarded)]. */
  readonly META: number;
}

/** Where `scripts/build-native.js` puts the addon. */
export const ADDON_PATH = fileURLToPath(new URL('../../.build/udpbatch.node', import.meta.url));

let addon: UdpBatchAddon | null | undefined;

/** The addon, or undefined when it is not built (or fails to load) on this machine. */
export function loadUdpBatch(): UdpBatchAddon | undefined {
  if (addon === undefined) {
    try {
      addon = existsSync(ADDON_PATH) ? (createRequire(import.meta.url)(ADDON_PATH) as UdpBatchAddon) : null;
    } catch {
      addon = null;
    }
  }
  return addon ?? undefined;
}

export interface BatchSocketOptions {
  readonly reusePort: boolean;
  /** For an IPv6 address: accept IPv6 only. */
  readonly ipv6Only: boolean;
  /** SO_RCVBUF and SO_SNDBUF, or 0 to keep the kernel's default. */
  readonly bufferBytes: number;
}

/**
 * Answers a received datagram without it leaving the batch: writes the answer to
 * `rx[off, off + len)`, from `family`, the address bytes at `addr[addrOff]` (4 or 16, network
 * order) and `port`, at `out[outOff]` (at most the group's slot size) and returns its length, or
 * returns 0 to leave the datagram to the group's user.
 */
export interface DatagramAnswerer {
  /** Longer datagrams are not offered: the rest of the traffic pays one comparison. */
  readonly maxLength: number;
  answer(rx: Buffer, off: number, len: number, family: 4 | 6, addr: Uint8Array, addrOff: number, port: number, out: Buffer, outOff: number): number;
}

/** What became of a datagram handed to `queue`: only 'queued' means it will be sent. */
export type Queued = 'queued' | 'too big' | 'not a literal IP' | 'closed';

export class BatchGroup {
  /** Bytes per slot: the largest datagram received whole, or sent. */
  readonly slotBytes: number;
  /** Received datagram i is `rx[offset(i), offset(i) + length(i))`. */
  readonly rx: Buffer;
  private readonly lib: UdpBatchAddon;
  /** The addon's group, for the forwarding table (src/turn/forwarder.ts). */
  readonly handle: unknown;
  private readonly meta: number;
  private readonly batch: number;
  private readonly rxMeta: Int32Array;
  private readonly rxMetaBytes: Buffer;
  private readonly tx: Buffer;
  private readonly txMeta: Int32Array;
  private readonly txMetaBytes: Buffer;
  private queued = 0;
  private scheduled = false;
  private closed = false;
  private readonly flushScheduled = (): void => {
    this.scheduled = false;
    this.flush();
  };

  /** `maxRounds`: batches one readable socket may deliver before the event loop moves on. */
  constructor(lib: UdpBatchAddon, slotBytes: number, maxRounds: number, onBatch: (sock: number, n: number) => void) {
    this.lib = lib;
    this.slotBytes = slotBytes;
    this.meta = lib.META;
    this.batch = lib.BATCH;
    const g = lib.group(slotBytes, maxRounds, onBatch);
    this.handle = g.handle;
    this.rx = Buffer.from(g.rx);
    this.rxMeta = new Int32Array(g.rxMeta);
    this.rxMetaBytes = Buffer.from(g.rxMeta);
    this.tx = Buffer.from(g.tx);
    this.txMeta = new Int32Array(g.txMeta);
    this.txMetaBytes = Buffer.from(g.txMeta);
  }

  /** Binds a socket of this group; throws with code EADDRINUSE when the port is taken. */
  open(address: string, port: number, opts: BatchSocketOptions): { sock: number; port: number } {
    return this.lib.open(this.handle, address, port, opts.reusePort, opts.ipv6Only, opts.bufferBytes);
  }

  /** Closes one socket, after what is queued for it has gone out (its id is reused). */
  closeSocket(sock: number): void {
    if (this.closed) return;
    this.flush();
    this.lib.close(this.handle, sock);
  }

  /** Closes every socket; what is still queued is dropped. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queued = 0;
    this.lib.closeGroup(this.handle);
  }

  // Received datagram i (0 <= i < n of the current onBatch call).
  offset(i: number): number { return i * this.slotBytes; }
  length(i: number): number { return this.rxMeta[i * this.meta + 1]!; }
  port(i: number): number { return this.rxMeta[i * this.meta + 2]!; }
  family(i: number): 4 | 6 { return this.rxMeta[i * this.meta + 3] === 4 ? 4 : 6; }
  /** Longer than a slot: the kernel cut it short. */
  truncated(i: number): boolean { return this.rxMeta[i * this.meta + 8] === 1; }
  /** Already sent on by the forwarding table (udpbatch.c): not for the group's user. */
  forwarded(i: number): boolean { return this.rxMeta[i * this.meta + 8] === 2; }
  /** The IPv4 source as a number (family 4 only). */
  ip4(i: number): number { return this.rxMetaBytes.readUInt32BE((i * this.meta + 4) * 4); }
  /** The source address as dgram writes it. */
  address(i: number): string {
    const at = (i * this.meta + 4) * 4;
    return this.family(i) === 4 ? formatIPv4(this.rxMetaBytes, at) : formatIPv6(this.rxMetaBytes, at);
  }

  /**
   * Queues `data[off, off + len)` from `sock` to `port` at `ip4` (IPv4 as a number) or, when
   * `ip4` is -1, at the IPv6 literal `address`.
   */
  queue(sock: number, data: Buffer, off: number, len: number, port: number, ip4: number, address: string): Queued {
    if (this.closed) return 'closed';
    if (len > this.slotBytes) return 'too big';
    const i = this.nextSlot();
    const m = i * this.meta;
    if (ip4 >= 0) {
      this.txMetaBytes.writeUInt32BE(ip4, (m + 4) * 4);
      this.txMeta[m + 3] = 4;
    } else {
      if (!parseIPv6(address, this.txMetaBytes, (m + 4) * 4)) return 'not a literal IP';
      this.txMeta[m + 3] = 6;
    }
    data.copy(this.tx, i * this.slotBytes, off, off + len);
    return this.commit(i, sock, len, port);
  }

  /**
   * Queues `msg` (one buffer, or a list sent as one datagram, as dgram's `send` takes) from
   * `sock` to `port` at the literal `address` of `family`.
   */
  queueMessage(sock: number, msg: Buffer | readonly Buffer[], port: number, family: 4 | 6, address: string): Queued {
    if (this.closed) return 'closed';
    const one = Buffer.isBuffer(msg);
    let len = 0;
    if (one) len = msg.length;
    else for (const part of msg as readonly Buffer[]) len += part.length;
    if (len > this.slotBytes) return 'too big';
    const i = this.nextSlot();
    if (!(family === 4 ? parseIPv4 : parseIPv6)(address, this.txMetaBytes, (i * this.meta + 4) * 4)) return 'not a literal IP';
    this.txMeta[i * this.meta + 3] = family;
    let at = i * this.slotBytes;
    if (one) msg.copy(this.tx, at);
    else for (const part of msg as readonly Buffer[]) at += part.copy(this.tx, at);
    return this.commit(i, sock, len, port);
  }

  /**
   * Lets `answerer` write the answer to received datagram i straight into the next send slot,
   * queued from `sock` back to i's source. False (nothing queued) when it does not answer.
   */
  answerInPlace(i: number, sock: number, answerer: DatagramAnswerer): boolean {
    if (this.closed) return false;
    const m = i * this.meta;
    const rxMeta = this.rxMeta;
    if (rxMeta[m + 1]! > answerer.maxLength) return false;
    const t = this.nextSlot();
    const family = rxMeta[m + 3] === 4 ? 4 : 6;
    const port = rxMeta[m + 2]!;
    const len = answerer.answer(this.rx, i * this.slotBytes, rxMeta[m + 1]!, family, this.rxMetaBytes, (m + 4) * 4, port, this.tx, t * this.slotBytes);
    if (len <= 0 || len > this.slotBytes) return false;
    const txMeta = this.txMeta;
    const o = t * this.meta;
    // [family, ip0..ip3] as received: the same layout both ways.
    for (let k = 3; k < 8; k++) txMeta[o + k] = rxMeta[m + k]!;
    this.commit(t, sock, len, port);
    return true;
  }

  /** A free send slot: when all are taken, they are sent first. */
  private nextSlot(): number {
    if (this.queued === this.batch) this.flush();
    return this.queued;
  }

  private commit(i: number, sock: number, len: number, port: number): 'queued' {
    const m = i * this.meta;
    this.txMeta[m] = sock;
    this.txMeta[m + 1] = len;
    this.txMeta[m + 2] = port;
    this.queued = i + 1;
    return 'queued';
  }

  /** Sends everything queued now. */
  flush(): void {
    const n = this.queued;
    if (n === 0 || this.closed) return;
    this.queued = 0;
    this.lib.flush(this.handle, n);
  }

  /** Sends everything queued by the end of this event-loop turn, together. */
  flushSoon(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flushScheduled);
  }

  /** Datagrams received, sent, and sends the kernel refused (full buffer, unreachable). */
  stats(): { received: number; sent: number; sendErrors: number } {
    const [received, sent, sendErrors] = this.lib.stats(this.handle);
    return { received, sent, sendErrors };
  }
}
