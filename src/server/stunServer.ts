/**
 * The STUN/TURN front door of one process: binds the UDP sockets and TCP listeners of the
 * configuration, decodes each packet once and hands it to the Binding handler or to the TURN
 * handler. Malformed input is counted and dropped; nothing a client sends can throw out of here.
 */
import type dgram from 'node:dgram';
import type net from 'node:net';
import { isIPv6 } from 'node:net';
import { readFileSync } from 'node:fs';
import { advertisedAddress } from '../config/advertised.ts';
import type { Config } from '../config/config.ts';
import type { Logger } from '../log.ts';
import { hotCounter, stunDroppedTotal, stunRequestsTotal, stunStreamClosedTotal, stunStreamConnections, stunStreamPaused, type HotCounter } from '../metrics/metrics.ts';
import {
  Method, MessageClass, messageType, decodeMessage, MessageWriter,
  StunDecodeError, createStunMessage, type StunMessage, type TransportAddress,
} from '../stun/index.ts';
import { bindUdp, closeUdp } from '../transport/udp.ts';
import { BatchUdpSocket } from '../transport/batchUdp.ts';
import type { DatagramAnswerer } from '../transport/batchGroup.ts';
import { listenStream, replaceTlsCredentials, type StreamListener } from '../transport/tcp.ts';
import { StreamGuard, type GuardedStream, type StreamTransport } from '../transport/streamGuard.ts';
import { streamCloseLabel, type StreamCloseCode } from '../errors.ts';
import type { EndpointIndex, Ingress } from '../transport/ingress.ts';
import { BindingHandler, PLAIN_REQUEST_MAX_BYTES } from './binding.ts';
import type { TurnHandler } from '../turn/handler.ts';
import { isChannelDataFrame, turnFrameLength } from '../turn/channelData.ts';

/** An incomplete frame may hold this much (a STUN message is at most 20 + 65535 bytes). */
const MAX_STREAM_BUFFER = 128 * 1024;

export class StunServer {
  private readonly config: Config;
  private readonly log: Logger;
  private readonly binding: BindingHandler;
  private readonly msg: StunMessage = createStunMessage();
  private readonly errWriter = new MessageWriter();
  private readonly udpSockets: dgram.Socket[] = [];
  private readonly streamServers: StreamListener[] = [];
  private tlsListener: StreamListener | undefined;
  private readonly streams = new Set<net.Socket>();
  private readonly guard: StreamGuard;
  private readonly endpoints: TransportAddress[];
  private turn: TurnHandler | undefined;
  private readonly counted: Record<'success' | 'error' | 'dropped' | 'malformed' | 'noTurn', HotCounter>;
  private readonly source: { family: 4 | 6; address: string; port: number } = { family: 4, address: '', port: 0 };
  /**
   * Plain Binding requests on batched UDP sockets are answered inside the batch, from their bytes
   * (BindingHandler.answerPlain); everything else comes to onUdp.
   */
  private readonly plainBinding: DatagramAnswerer = {
    maxLength: PLAIN_REQUEST_MAX_BYTES,
    answer: (rx, off, len, family, addr, addrOff, port, out, outOff) => {
      const n = this.binding.answerPlain(rx, off, len, family, addr, addrOff, port, out, outOff);
      if (n > 0) this.counted.success.count++;
      return n;
    },
  };

  constructor(config: Config, log: Logger) {
    this.config = config;
    this.log = log;
    const family = isIPv6(config.listen) ? 6 : 4;
    // RESPONSE-ORIGIN and OTHER-ADDRESS (RFC 5780 §7): --listen as advertised; --alt-ip as itself
    // (--external-ip names one address, the one in front of --listen).
    const primary = advertisedAddress(config, config.listen, family) ?? (family === 4 ? '127.0.0.1' : '::1');
    const ep = (address: string, port: number): TransportAddress => ({ family, address, port });
    this.endpoints = [ep(primary, config.port)];
    if (config.alt) {
      this.endpoints.push(ep(primary, config.alt.port), ep(config.alt.ip, config.port), ep(config.alt.ip, config.alt.port));
    }
    this.binding = new BindingHandler({ addresses: this.endpoints, rfc5780: config.alt !== undefined });
    this.counted = {
      success: hotCounter(stunRequestsTotal, { status: 'success', region: config.region }),
      error: hotCounter(stunRequestsTotal, { status: 'error', region: config.region }),
      dropped: hotCounter(stunRequestsTotal, { status: 'dropped', region: config.region }),
      malformed: hotCounter(stunDroppedTotal, { reason: 'malformed' }),
      noTurn: hotCounter(stunDroppedTotal, { reason: 'no_turn' }),
    };
    this.guard = new StreamGuard({
      idleTimeoutMs: config.tcpIdleTimeoutSec * 1000,
      maxPerSource: config.tcpMaxPerSource,
      holdsAllocation: (socket) => this.turn?.holdsAllocation(socket) ?? false,
      onClose: countStreamClose,
      onOpen: (transport, delta) => stunStreamConnections.labels(transport).inc(delta),
      onPause: (transport, delta) => stunStreamPaused.labels(transport).inc(delta),
    });
  }

  setTurnHandler(turn: TurnHandler): void {
    this.turn = turn;
  }

  async start(reusePort: boolean): Promise<void> {
    const c = this.config;
    const binds: { address: string; port: number; endpoint: EndpointIndex; ipv6Only?: boolean }[] = [
      { address: c.listen, port: c.port, endpoint: 0 },
    ];
    if (c.alt) {
      binds.push({ address: c.listen, port: c.alt.port, endpoint: 1 }, { address: c.alt.ip, port: c.port, endpoint: 2 }, { address: c.alt.ip, port: c.alt.port, endpoint: 3 });
    }
    for (const b of binds) {
      const socket = await bindUdp({ address: b.address, port: b.port, reusePort, io: c.udpIo });
      this.attachUdp(socket, b.endpoint);
      if (b.endpoint === 0 || !c.alt) {
        const server = await listenStream({ address: b.address, port: b.port, reusePort }, (s) => this.onStream(s, b.endpoint, 'tcp'));
        this.streamServers.push(server);
      }
    }
    // With the IPv4 wildcard, also serve IPv6 clients when the host has IPv6.
    if (c.listen === '0.0.0.0') {
      try {
        const socket6 = await bindUdp({ address: '::', port: c.port, reusePort, ipv6Only: true, io: c.udpIo });
        this.attachUdp(socket6, 0);
        this.streamServers.push(await listenStream({ address: '::', port: c.port, reusePort, ipv6Only: true }, (s) => this.onStream(s, 0, 'tcp')));
      } catch (err) {
        this.log.info({ err: (err as Error).message }, 'no IPv6 listener');
      }
    }
    // TURN over TLS (RFC 8656 §3.1) on its own port, on when --tls-cert and --tls-key are given.
    if (c.tls && c.roles.has('turn')) {
      const tls = {
        cert: readFileSync(c.tls.certFile), key: readFileSync(c.tls.keyFile),
        handshakeTimeoutMs: c.tlsHandshakeTimeoutSec * 1000,
        onHandshakeError: (timedOut: boolean) => countStreamClose('tls', timedOut ? 'TLS_HANDSHAKE_TIMEOUT' : 'TLS_HANDSHAKE_FAILED'),
      };
      this.tlsListener = await listenStream({ address: c.listen, port: c.tls.port, reusePort, tls }, (s) => this.onStream(s, 0, 'tls'));
      this.streamServers.push(this.tlsListener);
    }
    this.guard.start();
  }

  /**
   * New TLS connections get this certificate and key (tlsReload.ts); open ones keep theirs. Throws
   * (the old pair stays) when they do not load together; false when this process has no TLS port.
   */
  setTlsCredentials(cert: Buffer, key: Buffer): boolean {
    if (!this.tlsListener) return false;
    replaceTlsCredentials(this.tlsListener, cert, key);
    return true;
  }

  async stop(): Promise<void> {
    this.guard.stop();
    this.tlsListener = undefined;
    for (const s of this.streams) s.destroy();
    await Promise.all([
      ...this.udpSockets.map((s) => closeUdp(s)),
      ...this.streamServers.map((s) => s.close()),
    ]);
    this.udpSockets.length = 0;
    this.streamServers.length = 0;
  }

  private attachUdp(socket: dgram.Socket, endpoint: EndpointIndex): void {
    this.udpSockets.push(socket);
    const ingress: Ingress = { endpoint, slot: this.udpSockets.length - 1, udp: socket, stream: undefined };
    socket.on('message', (buf, rinfo) => this.onUdp(buf, rinfo, ingress));
    // With --secure-stun every Binding request needs credentials: the full path checks them.
    if (socket instanceof BatchUdpSocket && !this.config.secureStun) socket.answerInBatch(this.plainBinding);
    socket.on('error', (err) => this.log.warn({ err: err.message }, 'udp socket error'));
  }

  private setSource(address: string, port: number): TransportAddress {
    const s = this.source;
    // Dual-stack sockets report IPv4 clients as ::ffff:a.b.c.d; answer them as IPv4.
    if (address.startsWith('::ffff:') && address.includes('.')) {
      s.family = 4;
      s.address = address.slice(7);
    } else {
      s.family = address.includes(':') ? 6 : 4;
      s.address = address;
    }
    s.port = port;
    return s;
  }

  private onUdp(buf: Buffer, rinfo: dgram.RemoteInfo, ingress: Ingress): void {
    let source: TransportAddress;
    if (rinfo.family === 'IPv4') {
      source = this.source;
      source.family = 4;
      source.address = rinfo.address;
      source.port = rinfo.port;
    } else source = this.setSource(rinfo.address, rinfo.port);
    if (isChannelDataFrame(buf)) {
      if (this.turn) this.turn.onChannelData(buf, source, ingress);
      else this.counted.noTurn.count++;
      return;
    }
    const msg = this.decode(buf);
    if (msg) this.dispatch(msg, source, ingress);
  }

  private decode(buf: Buffer): StunMessage | undefined {
    try {
      return decodeMessage(buf, this.msg);
    } catch (err) {
      if (err instanceof StunDecodeError) {
        this.counted.dropped.count++;
        this.counted.malformed.count++;
        return undefined;
      }
      throw err;
    }
  }

  private dispatch(msg: StunMessage, source: TransportAddress, ingress: Ingress): void {
    if (msg.method === Method.Binding) {
      let integrity: { key: Buffer; sha256: boolean } | undefined;
      if (this.config.secureStun && msg.cls === MessageClass.Request) {
        // Like coturn's --secure-stun: Binding needs the same credentials as TURN.
        integrity = this.turn?.authorizeBinding(msg, source, ingress);
        if (integrity === undefined) {
          this.counted.error.count++;
          if (!this.turn) this.replyError(msg, source, ingress, 401, 'Unauthorized: --secure-stun needs the TURN role');
          return;
        }
      }
      const ans = this.binding.handle(msg, source, ingress.endpoint, ingress.stream !== undefined, integrity);
      if (typeof ans === 'string') {
        if (ans !== 'not_request') {
          this.counted.dropped.count++;
          stunDroppedTotal.labels(ans).inc(); // rare: a bad FINGERPRINT
        }
        return;
      }
      // First byte 0x01 0x01 = success response; anything else we sent is an error response.
      const ok = ans.response[0] === 0x01 && ans.response[1] === 0x01;
      (ok ? this.counted.success : this.counted.error).count++;
      // The writer's buffer is reused by the next packet: hand the socket its own copy.
      const out = Buffer.from(ans.response);
      if (ingress.stream) ingress.stream.write(out);
      else {
        const socket = this.udpSockets[this.socketIndex(ingress, ans.from)] ?? ingress.udp;
        socket?.send(out, ans.port, source.address);
      }
      return;
    }
    if (this.turn) {
      this.turn.onStun(msg, source, ingress);
      return;
    }
    if (msg.cls === MessageClass.Request) {
      // RFC 8489 §6.3.1: a request for a method we do not serve gets 400.
      this.counted.error.count++;
      this.replyError(msg, source, ingress, 400, 'Bad Request: method not served here');
    } else stunDroppedTotal.labels('unexpected').inc();
  }

  private replyError(msg: StunMessage, source: TransportAddress, ingress: Ingress, code: number, reason: string): void {
    const w = this.errWriter;
    w.reset(messageType(msg.method, MessageClass.ErrorResponse), msg.transactionId);
    w.addErrorCode(code, reason);
    const out = Buffer.from(w.finish());
    if (ingress.stream) ingress.stream.write(out);
    else ingress.udp?.send(out, source.port, source.address);
  }

  /** Sockets 0..3 are the four RFC 5780 endpoints in bind order; the IPv6 one comes after. */
  private socketIndex(ingress: Ingress, from: EndpointIndex): number {
    return from === ingress.endpoint ? this.udpSockets.indexOf(ingress.udp as dgram.Socket) : from;
  }

  private onStream(socket: net.Socket, endpoint: EndpointIndex, transport: StreamTransport): void {
    const conn = this.guard.admit(socket, transport);
    if (conn === undefined) return;
    this.streams.add(socket);
    socket.setNoDelay(true);
    const ingress: Ingress = { endpoint, slot: -1, udp: undefined, stream: socket };
    let pending: Buffer | undefined;
    // Parses what has arrived until it runs out or our answers back up (then 'drain' goes on).
    const parse = (): void => {
      const buf = pending;
      if (buf === undefined) return;
      pending = undefined;
      const off = this.parseFrames(buf, conn, ingress);
      if (off < 0) return; // closed
      conn.unparsedBytes = buf.length - off;
      if (off === buf.length) return;
      if (conn.pausedAtMs < 0 && buf.length - off > MAX_STREAM_BUFFER) {
        // An incomplete frame longer than any frame can be.
        stunDroppedTotal.labels('stream_overflow').inc();
        this.guard.close(conn, 'STREAM_FRAME_TOO_LARGE');
        return;
      }
      pending = Buffer.from(buf.subarray(off));
    };
    socket.on('data', (chunk: Buffer) => {
      pending = pending ? Buffer.concat([pending, chunk]) : chunk;
      parse();
    });
    socket.on('drain', () => {
      if (conn.pausedAtMs < 0) return;
      this.guard.resume(conn);
      parse();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.guard.release(conn);
      this.streams.delete(socket);
      this.turn?.onStreamClosed(socket);
    });
  }

  /**
   * Handles the complete frames of `buf`; returns where the unparsed rest starts (an incomplete
   * frame, or frames left for when our writes drain), or -1 when the connection was closed.
   */
  private parseFrames(buf: Buffer, conn: GuardedStream, ingress: Ingress): number {
    const socket = conn.socket;
    let off = 0;
    while (off < buf.length) {
      if (socket.destroyed) return -1;
      if (!this.guard.mayRead(conn)) return socket.destroyed ? -1 : off;
      const len = turnFrameLength(buf, off);
      if (len === -1) break; // need more bytes
      if (len < 0) {
        // Neither STUN nor ChannelData: the stream cannot be resynchronised.
        stunDroppedTotal.labels('malformed_stream').inc();
        this.guard.close(conn, 'STREAM_MALFORMED');
        return -1;
      }
      const frame = buf.subarray(off, off + len);
      off += len;
      conn.lastRxMs = this.guard.clockMs;
      const source = this.setSource(socket.remoteAddress ?? '', socket.remotePort ?? 0);
      if (isChannelDataFrame(frame)) {
        if (this.turn) this.turn.onChannelData(frame, source, ingress);
        else this.counted.noTurn.count++;
        continue;
      }
      const msg = this.decode(frame);
      if (msg) this.dispatch(msg, source, ingress);
    }
    return socket.destroyed ? -1 : off;
  }
}

/** Counts a TCP/TLS connection the server closed (docs/turn.md "Connection limits"). */
function countStreamClose(transport: StreamTransport, code: StreamCloseCode): void {
  stunStreamClosedTotal.labels(transport, streamCloseLabel(code)).inc();
}
