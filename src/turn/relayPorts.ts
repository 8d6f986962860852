/**
 * Relay sockets: one UDP socket per relayed transport address, bound in the worker that owns the
 * allocation, on a port the reservation book granted. Two implementations behind one shape:
 *
 * - batched (the udpbatch addon, through src/transport/batchGroup.ts): every relay socket of the
 *   process is in one group sharing one receive and one send buffer; a readable socket is
 *   drained with recvmmsg and its datagrams handed over in one call; sends queue up and leave
 *   with one sendmmsg per socket once per event-loop turn. A socket costs an fd and a few
 *   hundred bytes.
 * - Node's dgram, where the addon is not built (or --udp-io dgram).
 *
 * Either way the handler gets (owner, buffer, offset, length, family, IPv4 as a number or -1,
 * IPv6 text or '', port) — no objects of ours per datagram. With the addon the buffer is shared
 * and valid only during the call (`transient`).
 */
import type dgram from 'node:dgram';
import type { UdpIo } from '../config/config.ts';
import { BatchGroup, loadUdpBatch, type UdpBatchAddon } from '../transport/batchGroup.ts';
import { createLiteralUdpSocket } from '../transport/udp.ts';
import { ipv4ToNumber } from './fiveTuple.ts';

export interface RelayPort {
  readonly family: 4 | 6;
  /** The addon's group and socket id of a batched relay socket: the forwarding table sends from it (forwarder.ts). */
  readonly native?: { readonly group: BatchGroup; readonly sock: number };
  /** Sends `data[off, off + len)` to a peer; `ip4` is the IPv4 address as a number, or -1 for IPv6 `address`. */
  send(data: Buffer, off: number, len: number, port: number, ip4: number, address: string): void;
  close(): void;
}

export type PeerHandler<T> = (owner: T, buf: Buffer, off: number, len: number, family: 4 | 6, ip4: number, address: string, port: number) => void;

export interface RelayIo<T> {
  /** 'batch' or 'dgram'. */
  readonly kind: 'batch' | 'dgram';
  /** Datagrams handed to the handler live in a buffer reused after the call. */
  readonly transient: boolean;
  /** Binds a relay socket (rejects with code EADDRINUSE when the port is taken). */
  open(family: 4 | 6, bindAddress: string, port: number, owner: T): Promise<RelayPort>;
  /** Datagrams the kernel refused to send (full buffer, unreachable peer). */
  sendErrors(): number;
  /** The addon's group holding every batched relay socket (undefined on dgram). */
  readonly group?: BatchGroup;
}

/** The relay socket implementation for `io` (the listeners' --udp-io): batched where built. */
export function createRelayIo<T>(io: UdpIo, handler: PeerHandler<T>): RelayIo<T> {
  const lib = io === 'dgram' ? undefined : loadUdpBatch();
  return lib ? new BatchedRelayIo(lib, handler) : new DgramRelayIo(handler);
}

/** Bytes per slot: the largest UDP payload, so every peer datagram arrives whole. */
const RELAY_SLOT_BYTES = 65536;
/** Batches one readable relay socket may deliver before the others get a turn. */
const MAX_ROUNDS = 4;
const RELAY_SOCKET = { reusePort: false, ipv6Only: true, bufferBytes: 0 } as const;

/** What a batched relay port asks of its RelayIo. */
interface RelaySockets {
  send(sock: number, data: Buffer, off: number, len: number, port: number, ip4: number, address: string): void;
  closeSocket(sock: number): void;
}

class BatchedRelayIo<T> implements RelayIo<T>, RelaySockets {
  readonly kind = 'batch';
  readonly transient = true;
  private readonly handler: PeerHandler<T>;
  readonly group: BatchGroup;
  private readonly owners: (T | undefined)[] = [];

  constructor(lib: UdpBatchAddon, handler: PeerHandler<T>) {
    this.handler = handler;
    this.group = new BatchGroup(lib, RELAY_SLOT_BYTES, MAX_ROUNDS, (sock, n) => this.onBatch(sock, n));
  }

  private onBatch(sock: number, n: number): void {
    const owner = this.owners[sock];
    if (owner === undefined) return;
    const g = this.group;
    for (let i = 0; i < n; i++) {
      // A datagram larger than a slot was cut short by the kernel: not relayed. One the
      // forwarding table sent on (forwarder.ts) is done.
      if (g.truncated(i) || g.forwarded(i)) continue;
      const v4 = g.family(i) === 4;
      this.handler(owner, g.rx, g.offset(i), g.length(i), v4 ? 4 : 6, v4 ? g.ip4(i) : -1, v4 ? '' : g.address(i), g.port(i));
    }
  }

  open(family: 4 | 6, bindAddress: string, port: number, owner: T): Promise<RelayPort> {
    let sock: number;
    try {
      sock = this.group.open(bindAddress, port, RELAY_SOCKET).sock;
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    this.owners[sock] = owner;
    return Promise.resolve(new BatchedRelayPort(this, sock, family, this.group));
  }

  send(sock: number, data: Buffer, off: number, len: number, port: number, ip4: number, address: string): void {
    if (this.group.queue(sock, data, off, len, port, ip4, address) === 'queued') this.group.flushSoon();
  }

  /** Stops delivering to `sock` and closes it, after whatever is queued for it has gone out. */
  closeSocket(sock: number): void {
    if (this.owners[sock] === undefined) return;
    this.owners[sock] = undefined;
    this.group.closeSocket(sock);
  }

  sendErrors(): number {
    return this.group.stats().sendErrors;
  }
}

class BatchedRelayPort implements RelayPort {
  private readonly io: RelaySockets;
  private readonly sock: number;
  readonly family: 4 | 6;
  private readonly group: BatchGroup;

  constructor(io: RelaySockets, sock: number, family: 4 | 6, group: BatchGroup) {
    this.io = io;
    this.sock = sock;
    this.family = family;
    this.group = group;
  }

  get native(): { readonly group: BatchGroup; readonly sock: number } {
    return { group: this.group, sock: this.sock };
  }

  send(data: Buffer, off: number, len: number, port: number, ip4: number, address: string): void {
    this.io.send(this.sock, data, off, len, port, ip4, address);
  }

  close(): void {
    this.io.closeSocket(this.sock);
  }
}

class DgramRelayIo<T> implements RelayIo<T> {
  readonly kind = 'dgram';
  readonly transient = false;
  private readonly handler: PeerHandler<T>;

  constructor(handler: PeerHandler<T>) {
    this.handler = handler;
  }

  open(family: 4 | 6, bindAddress: string, port: number, owner: T): Promise<RelayPort> {
    const socket = createLiteralUdpSocket(family, { ipv6Only: family === 6 });
    const handler = this.handler;
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        try { socket.close(); } catch { /* never bound */ }
        reject(err);
      };
      socket.once('error', onError);
      socket.bind({ address: bindAddress, port, exclusive: true }, () => {
        socket.off('error', onError);
        socket.on('error', () => undefined);
        // One closure per socket, none per datagram.
        socket.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => {
          const v4 = rinfo.family === 'IPv4';
          handler(owner, msg, 0, msg.length, v4 ? 4 : 6, v4 ? ipv4ToNumber(rinfo.address) : -1, rinfo.address, rinfo.port);
        });
        resolve({
          family,
          send(data: Buffer, off: number, len: number, peerPort: number, _ip4: number, address: string): void {
            socket.send(off === 0 && len === data.length ? data : data.subarray(off, off + len), peerPort, address);
          },
          close(): void {
            try { socket.close(); } catch { /* already closed */ }
          },
        });
      });
    });
  }

  sendErrors(): number {
    return 0;
  }
}
