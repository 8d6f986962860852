/**
 * A stream stage in front of aedes that reads only MQTT fixed headers (MQTT 3.1.1 §2.2) and cuts
 * the connection the moment a packet announces more than it may carry: aedes' parser buffers a
 * packet whole before anyone looks at it (up to the protocol's 256 MiB), and before login nobody
 * has shown a token yet. Bytes pass through untouched; the stage keeps five numbers of state.
 *
 * - the first packet must be a CONNECT (MQTT 3.1.1 §3.1: "the first packet sent from the client
 *   to the server MUST be a CONNECT") of at most `maxConnectBytes` Remaining Length;
 * - every later packet at most `maxPacketBytes`;
 * - Remaining Length is at most four bytes (§2.2.3); a fifth continuation bit is malformed.
 *
 * Works on any byte stream (a TCP socket, or the MQTT stream made of WebSocket messages, where a
 * packet may span many small frames), so the limits are per MQTT packet, not per frame.
 */
import { Duplex } from 'node:stream';

export type PacketGuardViolation = 'connect_too_large' | 'packet_too_large' | 'bad_header';

export interface PacketGuardOptions {
  /** Largest Remaining Length of the CONNECT packet. */
  readonly maxConnectBytes: number;
  /** Largest Remaining Length of every later packet. */
  readonly maxPacketBytes: number;
  /** Called once, before the connection is destroyed. */
  readonly onViolation: (why: PacketGuardViolation) => void;
}

const CONNECT = 1;
// Header-reading states.
const AT_TYPE = 0;
const AT_LENGTH = 1;

/**
 * The header scanner alone (no streams): `feed` returns a violation as soon as one is known, or
 * undefined while everything seen so far is acceptable.
 */
export class FixedHeaderScanner {
  private state = AT_TYPE;
  private first = true;
  private type = 0;
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  /** Bytes of the current packet's body still to pass. */
  private skip = 0;

  private readonly maxConnectBytes: number;
  private readonly maxPacketBytes: number;

  constructor(maxConnectBytes: number, maxPacketBytes: number) {
    this.maxConnectBytes = maxConnectBytes;
    this.maxPacketBytes = maxPacketBytes;
  }

  feed(chunk: Uint8Array): PacketGuardViolation | undefined {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.skip > 0) {
        const take = Math.min(this.skip, n - i);
        this.skip -= take;
        i += take;
        continue;
      }
      const b = chunk[i++] as number;
      if (this.state === AT_TYPE) {
        this.type = b >> 4;
        if (this.first && this.type !== CONNECT) return 'bad_header';
        this.state = AT_LENGTH;
        this.length = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
        continue;
      }
      // MQTT 3.1.1 §2.2.3: seven bits per byte, least significant first, at most four bytes.
      this.length += (b & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      this.lengthBytes++;
      const limit = this.first ? this.maxConnectBytes : this.maxPacketBytes;
      // Known too big already, even before the last length byte.
      if (this.length > limit) return this.first ? 'connect_too_large' : 'packet_too_large';
      if ((b & 0x80) !== 0) {
        if (this.lengthBytes === 4) return 'bad_header';
        continue;
      }
      this.first = false;
      this.state = AT_TYPE;
      this.skip = this.length;
    }
    return undefined;
  }
}

/**
 * Wraps `inner` (the transport) in a duplex that aedes reads and writes: reads pass the scanner,
 * writes go straight to `inner` with its backpressure. Destroying either side destroys both.
 */
export class PacketGuard extends Duplex {
  private readonly inner: Duplex;
  private readonly scanner: FixedHeaderScanner;
  private violated = false;

  constructor(inner: Duplex, opts: PacketGuardOptions) {
    super({ allowHalfOpen: false });
    this.inner = inner;
    this.scanner = new FixedHeaderScanner(opts.maxConnectBytes, opts.maxPacketBytes);
    inner.on('data', (chunk: Buffer) => {
      if (this.violated) return;
      const why = this.scanner.feed(chunk);
      if (why !== undefined) {
        this.violated = true;
        opts.onViolation(why);
        inner.destroy();
        this.destroy();
        return;
      }
      if (!this.push(chunk)) inner.pause();
    });
    inner.once('end', () => this.push(null));
    inner.once('error', (err: Error) => this.destroy(err));
    inner.once('close', () => {
      if (!this.destroyed) this.destroy();
    });
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.inner.write(chunk, encoding)) callback();
    else this.inner.once('drain', () => callback());
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.inner.end(() => callback());
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (!this.inner.destroyed) this.inner.destroy();
    callback(err);
  }
}
