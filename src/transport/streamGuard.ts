/**
 * The limits of STUN/TURN TCP and TLS connections (docs/turn.md "Connection limits"): what a
 * client may make us hold. A connection may queue only so much for writing (past it, it is
 * closed); while the client does not take our answers we stop reading from it (backpressure),
 * and if it still takes nothing it is closed; a connection that sends no complete message for
 * the idle timeout is closed unless it holds a TURN allocation; one source IP holds a bounded
 * number of connections at once.
 *
 * One timer per process sweeps every connection, so the per-frame cost is one assignment.
 */
import type net from 'node:net';
import type { StreamCloseCode } from '../errors.ts';

/**
 * Past this many bytes waiting to be written, the connection stops being read. A Binding answer
 * is ~40 bytes; a client that reads nothing holds at most this much plus one input chunk's answers.
 */
export const WRITE_PAUSE_BYTES = 64 * 1024;
/**
 * Past this many bytes queued for the connection (socket backlog plus our unparsed input), it is
 * closed. Above the relay's own drop threshold (512 KiB, src/turn/relay.ts), so relayed media to
 * a slow client is dropped like datagrams, never the cause of a close.
 */
export const MAX_QUEUED_BYTES = 1024 * 1024;

export type StreamTransport = 'tcp' | 'tls';

export interface StreamGuardOptions {
  /** Idle (no complete message) time after which a connection without allocation is closed; also how long reading may stay paused. */
  readonly idleTimeoutMs: number;
  /** Connections per source IP at once; 0 = unlimited. */
  readonly maxPerSource: number;
  /**
   * RFC 8656 §2.1, §3.1: over TCP/TLS the connection is the allocation's 5-tuple and the
   * allocation dies with it, so a connection holding one lives as long as the allocation
   * (Refresh keeps it), not by our idle timer.
   */
  readonly holdsAllocation: (socket: net.Socket) => boolean;
  /** Counts a connection we closed. */
  readonly onClose: (transport: StreamTransport, code: StreamCloseCode) => void;
  /** Counts connections open (+1 / -1). */
  readonly onOpen?: (transport: StreamTransport, delta: 1 | -1) => void;
  /** Counts connections whose reading is paused for backpressure (+1 / -1). */
  readonly onPause?: (transport: StreamTransport, delta: 1 | -1) => void;
}

/** What the guard knows of one connection. */
export interface GuardedStream {
  readonly socket: net.Socket;
  readonly transport: StreamTransport;
  readonly sourceIp: string;
  /** Guard clock at the last complete message received (set by the reader). */
  lastRxMs: number;
  /** Guard clock when reading was paused for backpressure; -1 while reading. */
  pausedAtMs: number;
  /** Bytes received but not yet parsed (set by the reader). */
  unparsedBytes: number;
}

export class StreamGuard {
  private readonly opts: StreamGuardOptions;
  private readonly conns = new Set<GuardedStream>();
  private readonly perSource = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  /** Coarse clock, advanced by each sweep: what readers stamp `lastRxMs` with. */
  clockMs = Date.now();

  constructor(opts: StreamGuardOptions) {
    this.opts = opts;
  }

  get size(): number {
    return this.conns.size;
  }

  start(): void {
    // A quarter of the timeout, at most a second: a connection goes at most 25 % late.
    const everyMs = Math.max(25, Math.min(1000, this.opts.idleTimeoutMs / 4));
    this.timer = setInterval(() => this.sweep(Date.now()), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** A new connection: its record, or undefined when its source holds too many already (then it is closed). */
  admit(socket: net.Socket, transport: StreamTransport): GuardedStream | undefined {
    const ip = socket.remoteAddress ?? '';
    const held = this.perSource.get(ip) ?? 0;
    const max = this.opts.maxPerSource;
    if (max > 0 && held >= max) {
      this.opts.onClose(transport, 'STREAM_PER_SOURCE');
      socket.destroy();
      return undefined;
    }
    this.perSource.set(ip, held + 1);
    const conn: GuardedStream = { socket, transport, sourceIp: ip, lastRxMs: this.clockMs, pausedAtMs: -1, unparsedBytes: 0 };
    this.conns.add(conn);
    this.opts.onOpen?.(transport, 1);
    return conn;
  }

  /** The connection closed (whoever closed it). */
  release(conn: GuardedStream): void {
    if (!this.conns.delete(conn)) return;
    if (conn.pausedAtMs >= 0) this.opts.onPause?.(conn.transport, -1);
    const left = (this.perSource.get(conn.sourceIp) ?? 1) - 1;
    if (left > 0) this.perSource.set(conn.sourceIp, left);
    else this.perSource.delete(conn.sourceIp);
    this.opts.onOpen?.(conn.transport, -1);
  }

  /**
   * Before parsing the next frame: false when the connection must not be read now — its writes
   * are backed up (reading pauses until 'drain') or past the bound (it is closed).
   */
  mayRead(conn: GuardedStream): boolean {
    const queued = conn.socket.writableLength;
    if (queued <= WRITE_PAUSE_BYTES) return true;
    if (queued + conn.unparsedBytes > MAX_QUEUED_BYTES) {
      this.close(conn, 'STREAM_WRITE_BACKLOG');
      return false;
    }
    if (conn.pausedAtMs < 0) {
      conn.pausedAtMs = this.clockMs;
      conn.socket.pause();
      this.opts.onPause?.(conn.transport, 1);
    }
    return false;
  }

  /** 'drain': reading may go on. */
  resume(conn: GuardedStream): void {
    if (conn.pausedAtMs < 0) return;
    conn.pausedAtMs = -1;
    conn.socket.resume();
    this.opts.onPause?.(conn.transport, -1);
  }

  /** Closes and counts. */
  close(conn: GuardedStream, code: StreamCloseCode): void {
    if (conn.socket.destroyed) return;
    this.opts.onClose(conn.transport, code);
    conn.socket.destroy();
  }

  /** Closes what has been idle or stalled too long, or queued too much. Runs on the timer; tests call it with their own clock. */
  sweep(nowMs: number): void {
    this.clockMs = nowMs;
    const timeoutMs = this.opts.idleTimeoutMs;
    for (const conn of this.conns) {
      if (conn.socket.destroyed) continue;
      if (conn.socket.writableLength + conn.unparsedBytes > MAX_QUEUED_BYTES) this.close(conn, 'STREAM_WRITE_BACKLOG');
      else if (conn.pausedAtMs >= 0 && nowMs - conn.pausedAtMs >= timeoutMs) this.close(conn, 'STREAM_WRITE_STALLED');
      else if (nowMs - conn.lastRxMs >= timeoutMs && !this.opts.holdsAllocation(conn.socket)) this.close(conn, 'STREAM_IDLE');
    }
  }
}
