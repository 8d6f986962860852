/**
 * A small TURN client for integration tests, built on our codec: Allocate with the 401/438
 * round trip, Refresh, CreatePermission, ChannelBind, Send indications, ChannelData, and a queue
 * of what the server relays back. UDP, TCP or TLS.
 */
import dgram from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Attr, MessageClass, MessageWriter, Method, PasswordAlgorithm, attrValue, decodeMessage, encodePasswordAlgorithm,
  findAttr, longTermKey, messageType, newTransactionId, readErrorCode, readLifetime, readNonce, readRealm,
  readReservationToken, readXorAddress, addressFamilyValue, requestedTransportValue,
  type StunMessage, type TransportAddress, type PasswordAlgorithmName,
} from '../../src/stun/index.ts';
import { streamPadding, turnFrameLength } from '../../src/turn/channelData.ts';
import { startP2pd, type P2pdProcess, type StartOptions } from './p2pd.ts';
import { claimSlot } from './slotLock.ts';

export interface Received {
  readonly channel: number | undefined;
  readonly peer: TransportAddress | undefined;
  readonly data: Buffer;
}

export class TurnError extends Error {
  readonly code: number;
  readonly response: StunMessage;
  constructor(code: number, reason: string, response: StunMessage) {
    super(`TURN error ${code} ${reason}`);
    this.code = code;
    this.response = response;
  }
}

export interface ClientOptions {
  readonly port: number;
  readonly host?: string;
  readonly transport?: 'udp' | 'tcp' | 'tls';
  readonly username: string;
  readonly password: string;
  /** Ask for a SHA-256 key (PASSWORD-ALGORITHM) and MESSAGE-INTEGRITY-SHA256. */
  readonly sha256?: boolean;
  /** Local address to send from (another loopback address is another source IP). */
  readonly localAddress?: string;
}

export interface AllocateOptions {
  readonly lifetime?: number;
  readonly family?: 4 | 6;
  readonly additionalFamily?: 4 | 6;
  readonly evenPort?: boolean;
  readonly reserveNext?: boolean;
  readonly token?: Buffer;
  readonly transport?: number;
  readonly dontFragment?: boolean;
  readonly extra?: (w: MessageWriter) => void;
}

export class TurnTestClient {
  readonly opts: ClientOptions;
  private udp: dgram.Socket | undefined;
  private stream: net.Socket | undefined;
  private streamBuf = Buffer.alloc(0);
  private realm = '';
  private nonce = '';
  private key: Buffer | undefined;
  private algorithms: Buffer | undefined;
  private readonly waiting = new Map<string, (m: StunMessage) => void>();
  readonly received: Received[] = [];
  private readonly wakeups: (() => void)[] = [];
  /** Every error response seen (tests look at 401s and 438s here). */
  readonly errors: number[] = [];
  localPort = 0;

  private constructor(opts: ClientOptions) {
    this.opts = opts;
  }

  static async connect(opts: ClientOptions): Promise<TurnTestClient> {
    const c = new TurnTestClient(opts);
    await c.open();
    return c;
  }

  private get host(): string {
    return this.opts.host ?? '127.0.0.1';
  }

  private async open(): Promise<void> {
    const t = this.opts.transport ?? 'udp';
    if (t === 'udp') {
      const s = dgram.createSocket(this.host.includes(':') ? 'udp6' : 'udp4');
      s.on('message', (buf) => this.onPacket(Buffer.from(buf)));
      await new Promise<void>((resolve) => s.bind(0, this.opts.localAddress, resolve));
      this.localPort = s.address().port;
      this.udp = s;
      return;
    }
    const s = t === 'tls'
      ? tls.connect({ host: this.host, port: this.opts.port, rejectUnauthorized: false })
      : net.connect({ host: this.host, port: this.opts.port, localAddress: this.opts.localAddress });
    await new Promise<void>((resolve, reject) => {
      s.once(t === 'tls' ? 'secureConnect' : 'connect', () => resolve());
      s.once('error', reject);
    });
    s.on('error', () => undefined);
    s.on('data', (chunk: Buffer) => {
      this.streamBuf = Buffer.concat([this.streamBuf, chunk]);
      for (;;) {
        const len = turnFrameLength(this.streamBuf, 0);
        if (len < 0) break;
        this.onPacket(Buffer.from(this.streamBuf.subarray(0, len)));
        this.streamBuf = this.streamBuf.subarray(len);
      }
    });
    this.localPort = s.localPort ?? 0;
    this.stream = s;
  }

  close(): void {
    this.udp?.close();
    this.stream?.destroy();
  }

  /** Over TLS: the certificate the server showed this connection. */
  peerCertificate(): tls.PeerCertificate | undefined {
    return this.stream instanceof tls.TLSSocket ? this.stream.getPeerCertificate() : undefined;
  }

  /** Sends raw bytes to the server (fuzzing, malformed frames). */
  sendRaw(buf: Buffer): void {
    if (this.udp) this.udp.send(buf, this.opts.port, this.host);
    else this.stream?.write(buf);
  }

  private onPacket(buf: Buffer): void {
    if (buf.length >= 4 && (buf[0]! & 0xc0) === 0x40) {
      const len = buf.readUInt16BE(2);
      this.push({ channel: buf.readUInt16BE(0), peer: undefined, data: buf.subarray(4, 4 + len) });
      return;
    }
    let msg: StunMessage;
    try {
      msg = decodeMessage(buf);
    } catch {
      return;
    }
    if (msg.cls === MessageClass.Indication && msg.method === Method.Data) {
      const pi = findAttr(msg, Attr.XorPeerAddress);
      const di = findAttr(msg, Attr.Data);
      if (pi >= 0 && di >= 0) this.push({ channel: undefined, peer: readXorAddress(attrValue(msg, pi), msg.transactionId), data: Buffer.from(attrValue(msg, di)) });
      return;
    }
    const done = this.waiting.get(msg.transactionId.toString('hex'));
    if (done) done(msg);
  }

  private push(r: Received): void {
    this.received.push(r);
    for (const w of this.wakeups.splice(0)) w();
  }

  /** The next relayed datagram, or undefined after `timeoutMs`. */
  async nextData(timeoutMs = 2000): Promise<Received | undefined> {
    const until = Date.now() + timeoutMs;
    while (this.received.length === 0) {
      const left = until - Date.now();
      if (left <= 0) return undefined;
      await Promise.race([new Promise<void>((r) => this.wakeups.push(r)), sleep(left)]);
    }
    return this.received.shift();
  }

  /** One transaction: retransmits over UDP (RFC 8489 §6.2.1, shortened); undefined on timeout. */
  async transact(packet: Buffer, timeoutMs = 3000): Promise<StunMessage | undefined> {
    const tid = packet.subarray(8, 20).toString('hex');
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      let rto = 250;
      const finish = (m: StunMessage | undefined): void => {
        clearTimeout(timer);
        clearTimeout(overall);
        this.waiting.delete(tid);
        resolve(m);
      };
      const overall = setTimeout(() => finish(undefined), timeoutMs);
      this.waiting.set(tid, finish);
      const sendOnce = (): void => {
        this.sendRaw(packet);
        if (this.udp) {
          timer = setTimeout(sendOnce, rto);
          rto *= 2;
        }
      };
      sendOnce();
    });
  }

  /**
   * A request with long-term credentials: the first try goes without them (or with the last
   * nonce), a 401 or 438 supplies REALM and NONCE, and the request is sent again. Resolves with
   * the success response; rejects with TurnError otherwise.
   */
  async request(method: number, build: (w: MessageWriter) => void = () => undefined): Promise<StunMessage> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const w = new MessageWriter().reset(messageType(method, MessageClass.Request), newTransactionId());
      build(w);
      if (this.key) this.addCredentials(w);
      const res = await this.transact(w.toBuffer());
      if (!res) throw new Error(`no answer to method 0x${method.toString(16)}`);
      if (res.cls === MessageClass.SuccessResponse) return res;
      const err = readErrorCode(attrValue(res, findAttr(res, Attr.ErrorCode)));
      this.errors.push(err.code);
      if ((err.code === 401 && (!this.key || attempt === 0)) || err.code === 438) {
        const ri = findAttr(res, Attr.Realm);
        const ni = findAttr(res, Attr.Nonce);
        if (ri < 0 || ni < 0) throw new TurnError(err.code, err.reason, res);
        this.realm = readRealm(attrValue(res, ri));
        this.nonce = readNonce(attrValue(res, ni));
        const ai = findAttr(res, Attr.PasswordAlgorithms);
        this.algorithms = ai >= 0 ? Buffer.from(attrValue(res, ai)) : undefined;
        const algo: PasswordAlgorithmName = this.opts.sha256 ? 'sha256' : 'md5';
        this.key = longTermKey(this.opts.username, this.realm, this.opts.password, algo);
        continue;
      }
      throw new TurnError(err.code, err.reason, res);
    }
    throw new Error('authentication did not converge');
  }

  addCredentials(w: MessageWriter): void {
    w.addString(Attr.Username, this.opts.username);
    w.addString(Attr.Realm, this.realm);
    w.addString(Attr.Nonce, this.nonce);
    if (this.opts.sha256 && this.algorithms) {
      w.addAttr(Attr.PasswordAlgorithms, this.algorithms);
      w.addAttr(Attr.PasswordAlgorithm, encodePasswordAlgorithm({ algorithm: PasswordAlgorithm.SHA256, params: Buffer.alloc(0) }));
      w.addMessageIntegritySha256(this.key as Buffer);
    } else w.addMessageIntegrity(this.key as Buffer);
  }

  /** Credentials known from an earlier exchange (for hand-built requests). */
  get credentials(): { realm: string; nonce: string; key: Buffer | undefined } {
    return { realm: this.realm, nonce: this.nonce, key: this.key };
  }

  async allocate(o: AllocateOptions = {}): Promise<{ relayed: TransportAddress[]; mapped: TransportAddress; lifetime: number; token: Buffer | undefined; response: StunMessage }> {
    const res = await this.request(Method.Allocate, (w) => {
      w.addUint32(Attr.RequestedTransport, requestedTransportValue(o.transport ?? 17));
      if (o.lifetime !== undefined) w.addUint32(Attr.Lifetime, o.lifetime);
      if (o.family !== undefined) w.addUint32(Attr.RequestedAddressFamily, addressFamilyValue(o.family));
      if (o.additionalFamily !== undefined) w.addUint32(Attr.AdditionalAddressFamily, addressFamilyValue(o.additionalFamily));
      if (o.evenPort) w.addAttr(Attr.EvenPort, Buffer.from([o.reserveNext ? 0x80 : 0]));
      if (o.token) w.addAttr(Attr.ReservationToken, o.token);
      if (o.dontFragment) w.addAttr(Attr.DontFragment, Buffer.alloc(0));
      o.extra?.(w);
    });
    const relayed: TransportAddress[] = [];
    for (let i = 0; i < res.attrCount; i++) {
      if (res.attrTypes[i] === Attr.XorRelayedAddress) relayed.push(readXorAddress(attrValue(res, i), res.transactionId));
    }
    const ti = findAttr(res, Attr.ReservationToken);
    return {
      relayed,
      mapped: readXorAddress(attrValue(res, findAttr(res, Attr.XorMappedAddress)), res.transactionId),
      lifetime: readLifetime(attrValue(res, findAttr(res, Attr.Lifetime))),
      token: ti >= 0 ? Buffer.from(readReservationToken(attrValue(res, ti))) : undefined,
      response: res,
    };
  }

  async refresh(lifetime?: number): Promise<number> {
    const res = await this.request(Method.Refresh, (w) => {
      if (lifetime !== undefined) w.addUint32(Attr.Lifetime, lifetime);
    });
    return readLifetime(attrValue(res, findAttr(res, Attr.Lifetime)));
  }

  async createPermission(...peers: TransportAddress[]): Promise<void> {
    await this.request(Method.CreatePermission, (w) => {
      for (const p of peers) w.addXorAddress(Attr.XorPeerAddress, p);
    });
  }

  async channelBind(channel: number, peer: TransportAddress): Promise<void> {
    await this.request(Method.ChannelBind, (w) => {
      w.addUint32(Attr.ChannelNumber, (channel * 0x10000) >>> 0);
      w.addXorAddress(Attr.XorPeerAddress, peer);
    });
  }

  sendIndication(peer: TransportAddress, data: Buffer): void {
    const w = new MessageWriter().reset(messageType(Method.Send, MessageClass.Indication), newTransactionId());
    w.addXorAddress(Attr.XorPeerAddress, peer);
    w.addAttr(Attr.Data, data);
    this.sendRaw(w.toBuffer());
  }

  sendChannelData(channel: number, data: Buffer): void {
    const pad = this.udp ? 0 : streamPadding(data.length);
    const out = Buffer.alloc(4 + data.length + pad);
    out.writeUInt16BE(channel, 0);
    out.writeUInt16BE(data.length, 2);
    data.copy(out, 4);
    this.sendRaw(out);
  }
}

/** A UDP peer on loopback that records what reaches it and can answer. */
export class UdpPeer {
  readonly socket: dgram.Socket;
  readonly received: { data: Buffer; from: dgram.RemoteInfo }[] = [];
  private readonly wakeups: (() => void)[] = [];
  echo = false;

  private constructor(socket: dgram.Socket) {
    this.socket = socket;
    socket.on('message', (data, from) => {
      if (this.echo) socket.send(data, from.port, from.address);
      this.received.push({ data: Buffer.from(data), from });
      for (const w of this.wakeups.splice(0)) w();
    });
  }

  static async bind(host = '127.0.0.1'): Promise<UdpPeer> {
    const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve) => s.bind(0, host, resolve));
    return new UdpPeer(s);
  }

  get address(): TransportAddress {
    const a = this.socket.address();
    return { family: a.family === 'IPv6' ? 6 : 4, address: a.address, port: a.port };
  }

  async next(timeoutMs = 2000): Promise<{ data: Buffer; from: dgram.RemoteInfo } | undefined> {
    const until = Date.now() + timeoutMs;
    while (this.received.length === 0) {
      const left = until - Date.now();
      if (left <= 0) return undefined;
      await Promise.race([new Promise<void>((r) => this.wakeups.push(r)), sleep(left)]);
    }
    return this.received.shift();
  }

  close(): void {
    this.socket.close();
  }
}

/** Where the relay ranges of test servers are handed out, one lock file a range (see relayRange). */
const RANGE_LOCKS = join(tmpdir(), 'p2pd-test-relay-ranges');
const RANGE_SIZE = 1000;
/**
 * Ranges between freePort's ports (ports.ts, below 21000) and Linux's ephemeral ports
 * (32768-60999): 21000-21999 + k·1000 for k < 10 (31000-32767 is for tests that name their
 * own ranges).
 */
const RANGE_SLOTS = 10;

/**
 * A relay range no other test server on this machine holds now. Test files run in parallel
 * processes: two servers given overlapping random ranges bind each other's ports, and a port one
 * reserved for an EVEN-PORT token (RFC 8656 §7.2; every turnutils_uclient allocation asks for one)
 * is then taken when the token is redeemed, a 508. Each range is a lock file holding its
 * process's pid; `release` frees it.
 */
function relayRange(): { range: string; release: () => void } {
  const lock = claimSlot(RANGE_LOCKS, RANGE_SLOTS, Math.floor(Math.random() * RANGE_SLOTS));
  if (lock === undefined) throw new Error(`no free relay range for a test server: ${RANGE_SLOTS} held (${RANGE_LOCKS})`);
  const base = 21000 + lock.slot * RANGE_SIZE;
  return { range: `${base}-${base + RANGE_SIZE - 1}`, release: lock.release };
}

/** startP2pd with a relay range of its own below Linux's ephemeral range, unless given. */
export async function startTurnServer(opts: StartOptions = {}): Promise<P2pdProcess> {
  // Clients' sockets (a hundred uclients, say) and other test servers cannot take a port the
  // relay reserved for an EVEN-PORT token.
  const args = [...(opts.args ?? [])];
  if (args.includes('--relay-ports')) return startP2pd({ ...opts, args });
  const { range, release } = relayRange();
  let p: P2pdProcess;
  try {
    p = await startP2pd({ ...opts, args: [...args, '--relay-ports', range] });
  } catch (err) {
    release();
    throw err;
  }
  p.child.once('exit', release);
  return p;
}

/** Starts several servers at once; each that started is in `started` even when another failed. */
export async function startTurnServers(list: readonly StartOptions[], started: P2pdProcess[]): Promise<P2pdProcess[]> {
  const results = await Promise.allSettled(list.map((o) => startTurnServer(o)));
  for (const r of results) if (r.status === 'fulfilled') started.push(r.value);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
  return results.map((r) => (r as PromiseFulfilledResult<P2pdProcess>).value);
}
