/**
 * A UDP socket with batched I/O (the `udpbatch` addon: recvmmsg/sendmmsg), shaped like the part of
 * dgram.Socket the listeners use: 'message' and 'error' events, `send`, `address`, `close`.
 * Answers sent while a batch is being handled go out together in one sendmmsg after it; sends at
 * other times go out at once. Where the addon is not built, bindUdp uses plain dgram instead.
 */
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type dgram from 'node:dgram';
import { formatIPv6, parseIPv4, parseIPv6 } from '../stun/ip.ts';

interface NativeSocket {
  readonly handle: unknown;
  readonly rx: ArrayBuffer;
  readonly rxMeta: ArrayBuffer;
  readonly tx: ArrayBuffer;
  readonly txMeta: ArrayBuffer;
  readonly port: number;
}

interface UdpBatchAddon {
  open(address: string, port: number, reusePort: boolean, ipv6Only: boolean, onBatch: (n: number) => number): NativeSocket;
  flush(handle: unknown, first: number, n: number): void;
  close(handle: unknown): void;
  stats(handle: unknown): [number, number, number];
  readonly BATCH: number;
  readonly SLOT: number;
  readonly MSG_META: number;
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

export class BatchUdpSocket extends EventEmitter {
  private readonly lib: UdpBatchAddon;
  private readonly native: NativeSocket;
  private readonly rx: Buffer;
  private readonly rxMeta: Int32Array;
  private readonly rxMetaBytes: Buffer;
  private readonly tx: Buffer;
  private readonly txMeta: Int32Array;
  private readonly txMetaBytes: Buffer;
  private readonly localAddress: string;
  private readonly family: 4 | 6;
  private inBatch = false;
  private queued = 0;
  private closed = false;
  /** Sends queued by `sendLater` (in slots 0..later-1), not sent yet. */
  private later = 0;
  private laterScheduled = false;
  private readonly flushLater = (): void => {
    this.laterScheduled = false;
    if (this.later > 0 && !this.inBatch && !this.closed) this.lib.flush(this.native.handle, 0, this.later);
    this.later = 0;
  };

  constructor(lib: UdpBatchAddon, address: string, port: number, reusePort: boolean, ipv6Only: boolean) {
    super();
    this.lib = lib;
    this.localAddress = address;
    this.family = address.includes(':') ? 6 : 4;
    this.native = lib.open(address, port, reusePort, ipv6Only, (n) => this.onBatch(n));
    this.rx = Buffer.from(this.native.rx);
    this.rxMeta = new Int32Array(this.native.rxMeta);
    this.rxMetaBytes = Buffer.from(this.native.rxMeta);
    this.tx = Buffer.from(this.native.tx);
    this.txMeta = new Int32Array(this.native.txMeta);
    this.txMetaBytes = Buffer.from(this.native.txMeta);
  }

  private onBatch(n: number): number {
    const { SLOT, MSG_META } = this.lib;
    const meta = this.rxMeta;
    const mb = this.rxMetaBytes;
    // What sendLater queued goes first: the batch reuses the slots.
    if (this.later > 0) this.flushLater();
    this.inBatch = true;
    this.queued = 0;
    try {
      for (let i = 0; i < n && !this.closed; i++) {
        const m = i * MSG_META;
        const len = meta[m] as number;
        const ipOff = (m + 3) * 4;
        const v4 = meta[m + 2] === 4;
        const rinfo: dgram.RemoteInfo = {
          address: v4 ? `${mb[ipOff]}.${mb[ipOff + 1]}.${mb[ipOff + 2]}.${mb[ipOff + 3]}` : formatIPv6(mb, ipOff),
          family: v4 ? 'IPv4' : 'IPv6',
          port: meta[m + 1] as number,
          size: len,
        };
        // A copy, as dgram gives: handlers may keep the buffer past this batch.
        const start = i * SLOT;
        const buf = Buffer.allocUnsafe(len);
        this.rx.copy(buf, 0, start, start + len);
        this.emit('message', buf, rinfo);
      }
    } finally {
      this.inBatch = false;
    }
    // Send the answers now rather than returning their count for the addon to send after the
    // callback: promise continuations run before that, and a send from one would reuse slot 0.
    if (this.queued > 0 && !this.closed) this.lib.flush(this.native.handle, 0, this.queued);
    this.queued = 0;
    return 0;
  }

  /** dgram-compatible subset: one buffer or a list of buffers (sent as one datagram) to a literal IP. */
  send(msg: Buffer | readonly Buffer[], port: number, address: string, callback?: (err: Error | null) => void): void {
    if (this.closed) {
      callback?.(new Error('socket closed'));
      return;
    }
    const { BATCH, SLOT, MSG_META } = this.lib;
    // Slots 0..BATCH-2 collect a batch's answers, sent after it; the last slot is for sends at any
    // other time (timers, promise continuations that run while the batch's answers still wait).
    const immediate = BATCH - 1;
    const slot = this.inBatch ? this.queued : immediate;
    if (this.inBatch && slot >= immediate) {
      // The batch's answer slots are full: send what is queued, then continue from slot 0.
      this.lib.flush(this.native.handle, 0, this.queued);
      this.queued = 0;
      this.send(msg, port, address, callback);
      return;
    }
    const start = slot * SLOT;
    let len = 0;
    if (Buffer.isBuffer(msg)) {
      if (msg.length > SLOT) return this.tooBig(callback);
      len = msg.copy(this.tx, start);
    } else {
      for (const part of msg as readonly Buffer[]) {
        if (len + part.length > SLOT) return this.tooBig(callback);
        len += part.copy(this.tx, start + len);
      }
    }
    const m = slot * MSG_META;
    const ok = this.family === 4 || !address.includes(':')
      ? parseIPv4(address, this.txMetaBytes, (m + 3) * 4)
      : parseIPv6(address, this.txMetaBytes, (m + 3) * 4);
    if (!ok) {
      callback?.(new Error(`not a literal IP: ${address}`));
      return;
    }
    this.txMeta[m] = len;
    this.txMeta[m + 1] = port;
    this.txMeta[m + 2] = this.family === 4 || !address.includes(':') ? 4 : 6;
    if (this.inBatch) this.queued++;
    else this.lib.flush(this.native.handle, immediate, 1);
    callback?.(null);
  }

  /**
   * Like `send`, but outside a batch the datagram waits for the end of the event-loop turn and
   * leaves with everything else queued so in one sendmmsg (or before the next batch, which reuses
   * the slots). The TURN relay forwards peers' datagrams to clients this way: many per turn.
   */
  sendLater(msg: Buffer | readonly Buffer[], port: number, address: string): void {
    if (this.inBatch || this.closed) {
      this.send(msg, port, address);
      return;
    }
    // Queue as a batch answer would be (send flushes when the slots are full).
    if (this.later === 0) this.queued = 0;
    this.inBatch = true;
    try {
      this.send(msg, port, address);
    } finally {
      this.inBatch = false;
    }
    this.later = this.queued;
    if (!this.laterScheduled) {
      this.laterScheduled = true;
      setImmediate(this.flushLater);
    }
  }

  private tooBig(callback?: (err: Error | null) => void): void {
    callback?.(new Error('datagram larger than the batch slot'));
  }

  address(): { address: string; family: string; port: number } {
    return { address: this.localAddress, family: this.family === 4 ? 'IPv4' : 'IPv6', port: this.native.port };
  }

  /** Datagrams received, sent, and sends the kernel refused (full buffer, unreachable). */
  stats(): { received: number; sent: number; sendErrors: number } {
    const [received, sent, sendErrors] = this.lib.stats(this.native.handle);
    return { received, sent, sendErrors };
  }

  setRecvBufferSize(): void { /* set to 4 MiB natively */ }
  setSendBufferSize(): void { /* set to 4 MiB natively */ }

  close(callback?: () => void): void {
    if (!this.closed) {
      this.closed = true;
      this.lib.close(this.native.handle);
      setImmediate(() => this.emit('close'));
    }
    if (callback) setImmediate(callback);
  }
}
