/**
 * A light MQTT 3.1.1 client for the scale bench (bench/scale.ts): raw packets on a net.Socket,
 * only what a signaling client sends and reads (CONNECT with a will, SUBSCRIBE, PUBLISH QoS 0/1,
 * PUBACK, PINGREQ). A connection costs a socket and a few small objects, so one load process
 * holds ~10,000 of them where MQTT.js' clients would spend far more memory per connection.
 * Reconnects like the SDK: src/sdk/reconnect.ts (full-jitter backoff, the next node's URL).
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { realClock } from '../../src/sdk/clock.ts';
import { Backoff, Reconnector, SignalingUrls } from '../../src/sdk/reconnect.ts';

const utf8 = (s: string): Buffer => {
  const b = Buffer.from(s, 'utf8');
  const out = Buffer.allocUnsafe(2 + b.length);
  out.writeUInt16BE(b.length, 0);
  b.copy(out, 2);
  return out;
};

function packet(first: number, body: Buffer): Buffer {
  const len: number[] = [];
  let n = body.length;
  do {
    let d = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) d |= 0x80;
    len.push(d);
  } while (n > 0);
  return Buffer.concat([Buffer.from([first, ...len]), body]);
}

export interface LiteOptions {
  readonly urls: SignalingUrls;
  readonly clientId: string;
  readonly username: string;
  readonly password: string;
  readonly clean: boolean;
  readonly keepaliveSec: number;
  readonly will?: { readonly topic: string; readonly payload: string };
  /** Subscribed (QoS 1) on every connection. */
  readonly topic: string;
  /** Published (QoS 1, retained) after each SUBACK (a device's `online`). */
  readonly announce?: { readonly topic: string; readonly payload: string };
  readonly onMessage: (topic: string, payload: Buffer) => void;
  /** Connected and subscribed (again). */
  readonly onUp: (reconnect: boolean) => void;
  readonly onDown: () => void;
}

export class LiteClient {
  private readonly o: LiteOptions;
  private socket: Socket | undefined;
  private buf: Buffer = Buffer.alloc(0);
  private nextId = 1;
  private readonly acks = new Map<number, (acked: boolean) => void>();
  private readonly reconnector: Reconnector;
  private closed = false;
  private everUp = false;
  /** The last attempt got CONNACK 3. */
  private busy = false;
  up = false;
  lastSentMs = 0;

  constructor(o: LiteOptions) {
    this.o = o;
    this.reconnector = new Reconnector({
      clock: realClock, urls: o.urls, backoff: new Backoff({ baseMs: 1000, maxMs: 30_000 }),
      attempt: (url) => this.open(url),
    });
  }

  get url(): string {
    return this.o.urls.current;
  }

  start(): void {
    this.open(this.o.urls.current);
  }

  private open(url: string): void {
    if (this.closed) return;
    const u = new URL(url);
    const s = tcpConnect({ host: u.hostname, port: Number(u.port), noDelay: true });
    this.socket = s;
    this.buf = Buffer.alloc(0);
    s.on('connect', () => {
      const flags = 0x80 | 0x40 | (this.o.clean ? 0x02 : 0) | (this.o.will ? 0x04 | 0x08 | 0x20 : 0);
      const vh = Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, flags, this.o.keepaliveSec >> 8, this.o.keepaliveSec & 0xff]);
      const parts = [vh, utf8(this.o.clientId)];
      if (this.o.will) parts.push(utf8(this.o.will.topic), utf8(this.o.will.payload));
      parts.push(utf8(this.o.username), utf8(this.o.password));
      this.write(packet(0x10, Buffer.concat(parts)));
    });
    s.on('data', (d: Buffer) => this.read(d));
    s.on('error', () => undefined);
    s.on('close', () => {
      if (this.socket !== s) return;
      this.socket = undefined;
      for (const done of this.acks.values()) done(false);
      this.acks.clear();
      if (this.up) {
        this.up = false;
        this.o.onDown();
      }
      if (!this.closed) {
        if (this.busy) this.reconnector.busy();
        else this.reconnector.lost();
      }
      this.busy = false;
    });
  }

  private write(b: Buffer): void {
    this.lastSentMs = Date.now();
    this.socket?.write(b);
  }

  private read(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    for (;;) {
      if (this.buf.length < 2) return;
      let len = 0;
      let mul = 1;
      let i = 1;
      for (;;) {
        if (i >= this.buf.length) return;
        const byte = this.buf[i++] as number;
        len += (byte & 0x7f) * mul;
        mul *= 128;
        if ((byte & 0x80) === 0) break;
        if (i > 4) { this.socket?.destroy(); return; }
      }
      if (this.buf.length < i + len) return;
      const type = (this.buf[0] as number) >> 4;
      const flags = (this.buf[0] as number) & 0x0f;
      const body = this.buf.subarray(i, i + len);
      this.buf = this.buf.subarray(i + len);
      this.handle(type, flags, body);
    }
  }

  private handle(type: number, flags: number, body: Buffer): void {
    switch (type) {
      case 2: { // CONNACK
        // 3 (server unavailable): the node is busy with logins; come back soon (reconnect.ts `busy`).
        if (body[1] !== 0) { this.busy = body[1] === 3; this.socket?.destroy(); return; }
        const id = this.id();
        this.write(packet(0x82, Buffer.concat([Buffer.from([id >> 8, id & 0xff]), utf8(this.o.topic), Buffer.from([1])])));
        return;
      }
      case 9: { // SUBACK
        if (this.o.announce) this.publish(this.o.announce.topic, this.o.announce.payload, 1, true);
        this.up = true;
        this.reconnector.connected();
        const reconnect = this.everUp;
        this.everUp = true;
        this.o.onUp(reconnect);
        return;
      }
      case 3: { // PUBLISH
        const tlen = body.readUInt16BE(0);
        const topic = body.toString('utf8', 2, 2 + tlen);
        const qos = (flags >> 1) & 3;
        let at = 2 + tlen;
        if (qos > 0) {
          this.write(Buffer.from([0x40, 2, body[at] as number, body[at + 1] as number]));
          at += 2;
        }
        this.o.onMessage(topic, body.subarray(at));
        return;
      }
      case 4: { // PUBACK
        const id = body.readUInt16BE(0);
        const done = this.acks.get(id);
        this.acks.delete(id);
        done?.(true);
        return;
      }
      default:
        return; // PINGRESP
    }
  }

  private id(): number {
    this.nextId = this.nextId >= 0xffff ? 1 : this.nextId + 1;
    return this.nextId;
  }

  /** QoS 1: `onAck(true)` at the PUBACK, `onAck(false)` if the connection ends first. */
  publish(topic: string, payload: string, qos: 0 | 1, retain = false, onAck?: (acked: boolean) => void): void {
    if (this.socket === undefined) { onAck?.(false); return; }
    const t = utf8(topic);
    const p = Buffer.from(payload, 'utf8');
    if (qos === 0) {
      this.write(packet(0x30 | (retain ? 1 : 0), Buffer.concat([t, p])));
      return;
    }
    const id = this.id();
    this.acks.set(id, onAck ?? (() => undefined));
    this.write(packet(0x32 | (retain ? 1 : 0), Buffer.concat([t, Buffer.from([id >> 8, id & 0xff]), p])));
  }

  /** A PINGREQ when nothing was sent for most of the keepalive. */
  keepalive(nowMs: number): void {
    if (this.up && nowMs - this.lastSentMs >= this.o.keepaliveSec * 500) this.write(Buffer.from([0xc0, 0]));
  }

  close(): void {
    this.closed = true;
    this.reconnector.stop();
    this.socket?.destroy();
  }
}
