/**
 * RFC 5780 NAT behaviour discovery (§4.3 mapping, §4.4 filtering) over UDP, from one local
 * socket. Needs a server with a second address (OTHER-ADDRESS in its answers).
 *
 * The steps (a Binding transaction, the mapping tests, the filtering test) work on a
 * DatagramSocket, so `p2pd nat-type` (discoverNat, on node:dgram) and the SDK's own detection
 * (src/sdk/natDetectNode.ts, bounded in time and packets) share them, and tests can run them
 * against a simulated NAT.
 */
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import {
  Attr, MessageClass, Method, messageType, decodeMessage, findAttr, attrValue, readXorAddress, readAddress,
  MessageWriter, newTransactionId, StunDecodeError, type TransportAddress,
} from '../stun/index.ts';
import { natBadServer, natNoRfc5780, type P2pdError } from '../errors.ts';
import { classify, type Behaviour, type ClassicNatType, type NatBehaviour } from './classify.ts';

export interface DiscoveryOptions {
  readonly host: string;
  readonly port: number;
  /** How long one request waits for its answer across retransmissions. */
  readonly timeoutMs?: number;
}

export interface DiscoveryResult extends NatBehaviour {
  readonly type: ClassicNatType;
  readonly local: TransportAddress;
  readonly mapped: TransportAddress | undefined;
  readonly otherAddress: TransportAddress | undefined;
}

export interface BindingResult {
  readonly mapped: TransportAddress;
  readonly other: TransportAddress | undefined;
}

/** One local UDP port: what the discovery steps need of a socket. */
export interface DatagramSocket {
  /** The local address and port it is bound to. */
  readonly local: TransportAddress;
  /** Sends one datagram; a no-op once closed. */
  send(packet: Buffer, to: TransportAddress): void;
  onMessage(listener: (packet: Buffer) => void): void;
  close(): void;
}

/** A fresh socket (a new local port on the same local address) per call. */
export type OpenSocket = () => Promise<DatagramSocket>;

const BINDING_REQUEST = messageType(Method.Binding, MessageClass.Request);
const BINDING_SUCCESS = messageType(Method.Binding, MessageClass.SuccessResponse);
const CHANGE_IP = 0x4;
const CHANGE_PORT = 0x2;

export const sameAddress = (a: TransportAddress, b: TransportAddress): boolean => a.address === b.address && a.port === b.port;

/** The local IP the kernel would use towards `host` (a connected UDP socket reveals it). */
async function localAddressTowards(host: string, port: number, type: 'udp4' | 'udp6'): Promise<string> {
  const s = dgram.createSocket(type);
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.connect(port, host, () => resolve());
    });
    return s.address().address;
  } finally {
    s.close();
  }
}

export class BindingClient {
  private readonly socket: DatagramSocket;
  private readonly writer = new MessageWriter();
  private readonly pending = new Map<string, (r: BindingResult) => void>();
  /** Ends every transaction in flight (their timers too): close(). */
  private readonly cancels = new Set<() => void>();
  private readonly timeoutMs: number;

  constructor(socket: DatagramSocket, timeoutMs: number) {
    this.socket = socket;
    this.timeoutMs = timeoutMs;
    socket.onMessage((buf) => this.onMessage(buf));
  }

  /** Gives up every transaction in flight (they resolve as unanswered) and closes the socket. */
  close(): void {
    for (const cancel of [...this.cancels]) cancel();
    this.socket.close();
  }

  private onMessage(buf: Buffer): void {
    let msg;
    try {
      msg = decodeMessage(buf);
    } catch (err) {
      if (err instanceof StunDecodeError) return; // not for us
      throw err;
    }
    const done = this.pending.get(msg.transactionId.toString('hex'));
    if (!done || msg.type !== BINDING_SUCCESS) return;
    const xi = findAttr(msg, Attr.XorMappedAddress);
    const mi = xi >= 0 ? xi : findAttr(msg, Attr.MappedAddress);
    if (mi < 0) return;
    try {
      const mapped = xi >= 0 ? readXorAddress(attrValue(msg, mi), msg.transactionId) : readAddress(attrValue(msg, mi));
      const oi = findAttr(msg, Attr.OtherAddress);
      done({ mapped, other: oi >= 0 ? readAddress(attrValue(msg, oi)) : undefined });
    } catch (err) {
      if (!(err instanceof StunDecodeError)) throw err;
    }
  }

  private packet(tid: Buffer, changeFlags: number): Buffer {
    const w = this.writer.reset(BINDING_REQUEST, tid);
    if (changeFlags !== 0) w.addUint32(Attr.ChangeRequest, changeFlags);
    w.addFingerprint();
    return w.toBuffer();
  }

  /** One Binding transaction with RFC 8489 §6.2.1-style retransmissions; undefined on timeout. */
  request(to: TransportAddress, changeFlags: number): Promise<BindingResult | undefined> {
    const tid = newTransactionId();
    const packet = this.packet(tid, changeFlags);
    const key = tid.toString('hex');
    return new Promise((resolve) => {
      let rto = Math.max(50, Math.floor(this.timeoutMs / 8));
      let timer: NodeJS.Timeout;
      const deadline = setTimeout(() => finish(undefined), this.timeoutMs);
      const finish = (r: BindingResult | undefined): void => {
        clearTimeout(timer);
        clearTimeout(deadline);
        this.pending.delete(key);
        this.cancels.delete(cancel);
        resolve(r);
      };
      const cancel = (): void => finish(undefined);
      const send = (): void => {
        this.socket.send(packet, to);
        timer = setTimeout(send, rto);
        rto *= 2;
      };
      this.pending.set(key, finish);
      this.cancels.add(cancel);
      send();
    });
  }

  /**
   * Whether the NAT filters the answer to a CHANGE-REQUEST (RFC 5780 §4.4), decided on evidence
   * rather than on a timeout: each round sends the changed request, then a plain Binding request
   * to the same server address as a control. The server answers both in order, so once the
   * control's answer is here the changed answer has had its chance; it is filtered only when it
   * missed every round. A slow (loaded) server or client then only makes the test slower, not
   * its verdict different. Undefined when the server stops answering the controls.
   */
  async filtered(to: TransportAddress, changeFlags: number, rounds = FILTERING_ROUNDS): Promise<boolean | undefined> {
    const tid = newTransactionId();
    const packet = this.packet(tid, changeFlags);
    const key = tid.toString('hex');
    let answered = false;
    this.pending.set(key, () => { answered = true; });
    try {
      for (let i = 0; i < rounds && !answered; i++) {
        this.socket.send(packet, to);
        const control = await this.request(to, 0);
        if (answered) break;
        if (!control) return undefined;
      }
      return !answered;
    } finally {
      this.pending.delete(key);
    }
  }
}

/** Rounds of the filtering test: an answer lost this many times in a row reads as filtered. */
const FILTERING_ROUNDS = 3;

/** A node:dgram socket on an ephemeral port of `localIp`. */
export async function udpSocket(localIp: string): Promise<DatagramSocket> {
  const socket = dgram.createSocket(localIp.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, localIp, () => resolve());
  });
  // An ICMP error (port unreachable) surfaces as a socket error: it is only a lost answer here.
  socket.on('error', () => undefined);
  const family = localIp.includes(':') ? 6 : 4;
  let closed = false;
  return {
    local: { family, address: localIp, port: socket.address().port },
    send: (packet, to) => {
      if (closed) return;
      try {
        socket.send(packet, to.port, to.address);
      } catch { /* e.g. an address of the other family: a datagram lost */ }
    },
    onMessage: (listener) => { socket.on('message', listener); },
    close: () => {
      if (closed) return;
      closed = true;
      socket.close();
    },
  };
}

/** Sockets on the local address the kernel uses towards `server` (so `natted` compares like with like). */
export async function socketsTowards(server: TransportAddress): Promise<OpenSocket> {
  const localIp = await localAddressTowards(server.address, server.port, server.family === 6 ? 'udp6' : 'udp4');
  return () => udpSocket(localIp);
}

/**
 * RFC 5780 §4.3: tests II (the alternate IP, primary port) and III (the alternate IP and port)
 * after test I's answer `t1` came from `primary` with OTHER-ADDRESS. For a natted client only.
 */
export async function discoverMapping(client: BindingClient, primary: TransportAddress, t1: BindingResult & { other: TransportAddress }): Promise<Behaviour> {
  const other = t1.other;
  const t2 = await client.request({ family: other.family, address: other.address, port: primary.port }, 0);
  if (!t2) throw natBadServer(`no answer from the alternate address ${other.address}:${primary.port}`);
  if (sameAddress(t2.mapped, t1.mapped)) return 'endpoint-independent';
  const t3 = await client.request(other, 0);
  if (!t3) throw natBadServer(`no answer from the alternate address ${other.address}:${other.port}`);
  return sameAddress(t3.mapped, t2.mapped) ? 'address-dependent' : 'address-and-port-dependent';
}

/**
 * RFC 5780 §4.4: asks for the answer from the other IP and port, then from the other port only;
 * from a fresh port, since the mapping tests' packets (to the other address) would have opened
 * the filter of an address-dependent NAT for it.
 */
export async function discoverFiltering(open: OpenSocket, primary: TransportAddress, timeoutMs: number): Promise<Behaviour> {
  const client = new BindingClient(await open(), timeoutMs);
  try {
    const noAnswer = (): P2pdError => natBadServer(`${primary.address}:${primary.port} stopped answering during the filtering test`);
    const both = await client.filtered(primary, CHANGE_IP | CHANGE_PORT);
    if (both === undefined) throw noAnswer();
    if (!both) return 'endpoint-independent';
    const portOnly = await client.filtered(primary, CHANGE_PORT);
    if (portOnly === undefined) throw noAnswer();
    return portOnly ? 'address-and-port-dependent' : 'address-dependent';
  } finally {
    client.close();
  }
}

export async function discoverNat(opts: DiscoveryOptions): Promise<DiscoveryResult> {
  const { address: serverIp, family } = await lookup(opts.host);
  const primary: TransportAddress = { family: family === 6 ? 6 : 4, address: serverIp, port: opts.port };
  const open = await socketsTowards(primary);
  const timeoutMs = opts.timeoutMs ?? 2000;
  const socket = await open();
  const local = socket.local;
  const client = new BindingClient(socket, timeoutMs);
  try {
    // Test I: is UDP open at all, what is the mapping, and where is the server's other address.
    const t1 = await client.request(primary, 0);
    if (!t1) {
      const b = { reachable: false, natted: false, mapping: undefined, filtering: undefined };
      return { ...b, type: classify(b), local, mapped: undefined, otherAddress: undefined };
    }
    const other = t1.other;
    if (!other) throw natNoRfc5780(`${opts.host}:${opts.port} gives no OTHER-ADDRESS: it does not support RFC 5780 (a server needs a second IP)`);
    const natted = !sameAddress(t1.mapped, local);
    const mapping: Behaviour = natted ? await discoverMapping(client, primary, { ...t1, other }) : 'endpoint-independent';
    const filtering = await discoverFiltering(open, primary, timeoutMs);
    const b = { reachable: true, natted, mapping, filtering };
    return { ...b, type: classify(b), local, mapped: t1.mapped, otherAddress: other };
  } finally {
    client.close();
  }
}
