/**
 * A listener's UDP socket on the udpbatch addon (a `BatchGroup` of one socket), shaped like the
 * part of dgram.Socket the listeners use: 'message' and 'error' events, `send`, `address`,
 * `close`. Answers sent while a batch is being handled go out together in one sendmmsg after it;
 * sends at other times go out at once. Where the addon is not built, bindUdp uses plain dgram.
 */
import { EventEmitter } from 'node:events';
import type dgram from 'node:dgram';
import { BatchGroup, type DatagramAnswerer, type Queued, type UdpBatchAddon } from './batchGroup.ts';

/** Bytes per slot: STUN and ChannelData from clients fit (a longer datagram is cut short). */
export const LISTENER_SLOT_BYTES = 2048;
/** Batches one wake-up may read before the event loop moves on. */
const MAX_ROUNDS = 16;
const BUFFER_BYTES = 4 << 20;

export class BatchUdpSocket extends EventEmitter {
  private readonly group: BatchGroup;
  private readonly sock: number;
  private readonly boundPort: number;
  private readonly localAddress: string;
  private readonly family: 4 | 6;
  private inBatch = false;
  private closed = false;
  private answerer: DatagramAnswerer | undefined;

  constructor(lib: UdpBatchAddon, address: string, port: number, reusePort: boolean, ipv6Only: boolean) {
    super();
    this.localAddress = address;
    this.family = address.includes(':') ? 6 : 4;
    this.group = new BatchGroup(lib, LISTENER_SLOT_BYTES, MAX_ROUNDS, (_sock, n) => this.onBatch(n));
    try {
      const s = this.group.open(address, port, { reusePort, ipv6Only, bufferBytes: BUFFER_BYTES });
      this.sock = s.sock;
      this.boundPort = s.port;
    } catch (err) {
      this.group.close();
      throw err;
    }
  }

  /**
   * Datagrams `answerer` answers are answered inside the batch, back to their source from this
   * socket, and never emitted as 'message'; the others are emitted as before.
   */
  answerInBatch(answerer: DatagramAnswerer): void {
    this.answerer = answerer;
  }

  private onBatch(n: number): void {
    const g = this.group;
    const answerer = this.answerer;
    this.inBatch = true;
    try {
      for (let i = 0; i < n && !this.closed; i++) {
        if (g.forwarded(i) || (answerer !== undefined && g.answerInPlace(i, this.sock, answerer))) continue;
        const len = g.length(i);
        const rinfo: dgram.RemoteInfo = { address: g.address(i), family: g.family(i) === 4 ? 'IPv4' : 'IPv6', port: g.port(i), size: len };
        // A copy, as dgram gives: handlers may keep the buffer past this batch.
        const buf = Buffer.allocUnsafe(len);
        g.rx.copy(buf, 0, g.offset(i), g.offset(i) + len);
        this.emit('message', buf, rinfo);
      }
    } finally {
      this.inBatch = false;
    }
    // Sent now, before the promise continuations of the handlers run and queue more.
    g.flush();
  }

  /** dgram-compatible subset: one buffer or a list of buffers (sent as one datagram) to a literal IP. */
  send(msg: Buffer | readonly Buffer[], port: number, address: string, callback?: (err: Error | null) => void): void {
    const queued = this.queue(msg, port, address);
    if (queued === 'queued' && !this.inBatch) this.group.flush();
    callback?.(queued === 'queued' ? null : sendError(queued, address));
  }

  /**
   * Like `send`, but outside a batch the datagram waits for the end of the event-loop turn and
   * leaves with everything else queued so in one sendmmsg. The TURN relay forwards peers'
   * datagrams to clients this way: many per turn.
   */
  sendLater(msg: Buffer | readonly Buffer[], port: number, address: string): void {
    if (this.queue(msg, port, address) === 'queued' && !this.inBatch) this.group.flushSoon();
  }

  private queue(msg: Buffer | readonly Buffer[], port: number, address: string): Queued {
    if (this.closed) return 'closed';
    return this.group.queueMessage(this.sock, msg, port, this.family === 4 || !address.includes(':') ? 4 : 6, address);
  }

  /** The addon's group and socket id: where the forwarding table sends clients' ChannelData from (src/turn/forwarder.ts). */
  get native(): { readonly group: BatchGroup; readonly sock: number } {
    return { group: this.group, sock: this.sock };
  }

  address(): { address: string; family: string; port: number } {
    return { address: this.localAddress, family: this.family === 4 ? 'IPv4' : 'IPv6', port: this.boundPort };
  }

  /** Datagrams received, sent, and sends the kernel refused (full buffer, unreachable). */
  stats(): { received: number; sent: number; sendErrors: number } {
    return this.group.stats();
  }

  setRecvBufferSize(): void { /* set to 4 MiB natively */ }
  setSendBufferSize(): void { /* set to 4 MiB natively */ }

  close(callback?: () => void): void {
    if (!this.closed) {
      this.closed = true;
      this.group.close();
      setImmediate(() => this.emit('close'));
    }
    if (callback) setImmediate(callback);
  }
}

function sendError(why: Exclude<Queued, 'queued'>, address: string): Error {
  if (why === 'closed') return new Error('socket closed');
  if (why === 'too big') return new Error('datagram larger than the batch slot');
  return new Error(`not a literal IP: ${address}`);
}
