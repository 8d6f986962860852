/**
 * Relay sockets: one UDP socket per relayed transport address, bound in the worker that owns the
 * allocation, on a port the reservation book granted. Two implementations behind one shape:
 *
 * - batched (the relayio addon, src/turn/native/relayio.c): every relay socket of the process
 *   shares one receive and one send buffer; a readable socket is drained with recvmmsg and its
 *   datagrams handed over in one call; sends queue up and leave with one sendmmsg per socket once
 *   per event-loop turn. A socket costs an fd and a few hundred bytes.
 * - Node's dgram, where the addon is not built (or --udp-io dgram).
 *
 * Either way the handler gets (owner, buffer, offset, length, family, IPv4 as a number or -1,
 * IPv6 text or '', port) — no objects of ours per datagram. With the addon the buffer is shared
 * and valid only during the call (`transient`).
 */
import type dgram from 'node:dgram';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatIPv6, parseIPv6 } from '../stun/index.ts';
import type { UdpIo } from '../config/config.ts';
import { createLiteralUdpSocket } from '../transport/udp.ts';
import { ipv4ToNumber } from './fiveTuple.ts';

export interface RelayPort {
  readonly family: 4 | 6;
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
}

interface RelayIoAddon {
  init(onBatch: (sock: number, n: number) => void): { rx: ArrayBuffer; rxMeta: ArrayBuffer; tx: ArrayBuffer; txMeta: ArrayBuffer };
  open(address: string, port: number): number;
  close(sock: number): void;
  flush(n: number): void;
  sendErrors(): number;
  readonly BATCH: number;
  readonly SLOT: number;
  readonly META: number;
}

/** Where `scripts/build-native.js` puts the addon. */
export const RELAYIO_PATH = fileURLToPath(new URL('../../.build/relayio.node', import.meta.url));

let addon: RelayIoAddon | null | undefined;

function loadAddon(): RelayIoAddon | undefined {
  if (addon === undefined) {
    try {
      addon = existsSync(RELAYIO_PATH) ? (createRequire(import.meta.url)(RELAYIO_PATH) as RelayIoAddon) : null;
    } catch {
      addon = null;
    }
  }
  return addon ?? undefined;
}

/** The relay socket implementation for `io` (the listeners' --udp-io): batched where built. */
export function createRelayIo<T>(io: UdpIo, handler: PeerHandler<T>): RelayIo<T> {
  const lib = io === 'dgram' ? undefined : loadAddon();
  if (lib && !batchedTaken) {
    batchedTaken = true;
    return new BatchedRelayIo(lib, handler);
  }
  return new DgramRelayIo(handler);
}

// The addon's buffers are per process: one batched RelayIo per process.
let batchedTaken = false;

class BatchedRelayIo<T> implements RelayIo<T>, SendQueue {
  readonly kind = 'batch';
  readonly transient = true;
  private readonly lib: RelayIoAddon;
  private readonly handler: PeerHandler<T>;
  private readonly owners: (T | undefined)[] = [];
  private readonly rx: Buffer;
  private readonly rxMeta: Int32Array;
  private readonly rxMetaBytes: Buffer;
  private readonly tx: Buffer;
  private readonly txMeta: Int32Array;
  private readonly txMetaBytes: Buffer;
  private queued = 0;
  private scheduled = false;
  private readonly flushQueued = (): void => {
    this.scheduled = false;
    this.flush();
  };

  constructor(lib: RelayIoAddon, handler: PeerHandler<T>) {
    this.lib = lib;
    this.handler = handler;
    const b = lib.init((sock, n) => this.onBatch(sock, n));
    this.rx = Buffer.from(b.rx);
    this.rxMeta = new Int32Array(b.rxMeta);
    this.rxMetaBytes = Buffer.from(b.rxMeta);
    this.tx = Buffer.from(b.tx);
    this.txMeta = new Int32Array(b.txMeta);
    this.txMetaBytes = Buffer.from(b.txMeta);
  }

  private onBatch(sock: number, n: number): void {
    const owner = this.owners[sock];
    if (owner === undefined) return;
    const { SLOT, META } = this.lib;
    const meta = this.rxMeta;
    for (let i = 0; i < n; i++) {
      const m = i * META;
      // A datagram larger than a slot was cut short by the kernel: not relayed.
      if (meta[m + 7] !== 0) continue;
      const v4 = meta[m + 2] === 4;
      const ipAt = (m + 3) * 4;
      this.handler(owner, this.rx, i * SLOT, meta[m]!, v4 ? 4 : 6, v4 ? this.rxMetaBytes.readUInt32BE(ipAt) : -1,
        v4 ? '' : formatIPv6(this.rxMetaBytes, ipAt), meta[m + 1]!);
    }
  }

  open(family: 4 | 6, bindAddress: string, port: number, owner: T): Promise<RelayPort> {
    let sock: number;
    try {
      sock = this.lib.open(bindAddress, port);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    this.owners[sock] = owner;
    return Promise.resolve(new BatchedRelayPort(this, sock, family));
  }

  /** Stops delivering to `sock` and closes it, after whatever is queued for it has gone out. */
  closeSocket(sock: number): void {
    if (this.owners[sock] === undefined) return;
    // The id is reused after close: nothing queued may be left addressed to it.
    this.flush();
    this.owners[sock] = undefined;
    this.lib.close(sock);
  }

  queue(sock: number, data: Buffer, off: number, len: number, port: number, ip4: number, address: string): void {
    const { BATCH, SLOT, META } = this.lib;
    if (len > SLOT) return;
    if (this.queued === BATCH) this.flush();
    const i = this.queued;
    const m = i * META;
    if (ip4 >= 0) {
      this.txMetaBytes.writeUInt32BE(ip4, (m + 4) * 4);
      this.txMeta[m + 3] = 4;
    } else {
      if (!parseIPv6(address, this.txMetaBytes, (m + 4) * 4)) return;
      this.txMeta[m + 3] = 6;
    }
    data.copy(this.tx, i * SLOT, off, off + len);
    this.txMeta[m] = sock;
    this.txMeta[m + 1] = len;
    this.txMeta[m + 2] = port;
    this.queued = i + 1;
    if (!this.scheduled) {
      this.scheduled = true;
      // Once per event-loop turn: everything queued in this turn leaves together.
      setImmediate(this.flushQueued);
    }
  }

  private flush(): void {
    const n = this.queued;
    if (n === 0) return;
    this.queued = 0;
    this.lib.flush(n);
  }

  sendErrors(): number {
    return this.lib.sendErrors();
  }
}

/** What a batched relay port asks of its RelayIo. */
interface SendQueue {
  queue(sock: number, data: Buffer, off: number, len: number, port: number, ip4: number, address: string): void;
  closeSocket(sock: number): void;
}

class BatchedRelayPort implements RelayPort {
  private readonly io: SendQueue;
  private readonly sock: number;
  readonly family: 4 | 6;

  constructor(io: SendQueue, sock: number, family: 4 | 6) {
    this.io = io;
    this.sock = sock;
    this.family = family;
  }

  send(data: Buffer, off: number, len: number, port: number, ip4: number, address: string): void {
    this.io.queue(this.sock, data, off, len, port, ip4, address);
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
