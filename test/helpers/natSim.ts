/**
 * A simulated network for NAT detection tests: client sockets behind a NAT with a chosen mapping
 * and filtering behaviour (RFC 4787 §4.1, §5), in front of the real STUN Binding handler
 * (src/server/binding.ts) — an RFC 5780 server with four endpoints and a second, plain server.
 * No I/O: datagrams are delivered on the next turn of the event loop. Counts what clients send.
 */
import { BindingHandler } from '../../src/server/binding.ts';
import type { EndpointIndex } from '../../src/transport/ingress.ts';
import { decodeMessage, type TransportAddress } from '../../src/stun/index.ts';
import type { Behaviour } from '../../src/nat/classify.ts';
import type { DatagramSocket, OpenSocket } from '../../src/nat/discovery.ts';

export interface NatSimOptions {
  /** The NAT's behaviour; both undefined: no NAT (the client's address is public). */
  readonly mapping?: Behaviour;
  readonly filtering?: Behaviour;
  /** The primary server answers with OTHER-ADDRESS and honours CHANGE-REQUEST (default true). */
  readonly rfc5780?: boolean;
  /** Everything the client sends is lost. */
  readonly blocked?: boolean;
  /** Server addresses (`ip:port`) that never answer. */
  readonly silent?: readonly string[];
}

const v4 = (address: string, port: number): TransportAddress => ({ family: 4, address, port });
const key = (a: TransportAddress): string => `${a.address}:${a.port}`;

export class NatSim {
  /** The RFC 5780 server: primary, then the alternate port, IP, and both. */
  readonly endpoints = [v4('198.51.100.1', 3478), v4('198.51.100.1', 3479), v4('198.51.100.2', 3478), v4('198.51.100.2', 3479)];
  readonly primary = this.endpoints[0] as TransportAddress;
  /** Another STUN server, without RFC 5780. */
  readonly second = v4('203.0.113.7', 3478);
  /** Datagrams the clients sent. */
  packets = 0;
  /** Sockets opened, and those still open. */
  opened = 0;
  readonly open: OpenSocket;

  private readonly opts: NatSimOptions;
  private readonly rfc5780Server: BindingHandler;
  private readonly plainServer = new BindingHandler({ addresses: [this.second], rfc5780: false });
  private readonly natted: boolean;
  private readonly localIp: string;
  private nextLocalPort = 50000;
  private nextPublicPort = 40000;
  /** Mapping key → public port. */
  private readonly mappings = new Map<string, number>();
  /** Public port → its socket and the remote IPs and IP:ports it has sent to. */
  private readonly publicPorts = new Map<number, { socket: SimSocket; sentTo: Set<string> }>();
  private readonly sockets = new Set<SimSocket>();
  readonly publicIp = '192.0.2.1';

  constructor(opts: NatSimOptions = {}) {
    this.opts = opts;
    this.natted = opts.mapping !== undefined || opts.filtering !== undefined;
    this.localIp = this.natted ? '10.0.0.2' : '192.0.2.50';
    this.rfc5780Server = new BindingHandler({ addresses: this.endpoints, rfc5780: opts.rfc5780 ?? true });
    this.open = () => {
      const s = new SimSocket(this, v4(this.localIp, this.nextLocalPort++));
      this.sockets.add(s);
      this.opened++;
      return Promise.resolve(s);
    };
  }

  get openSockets(): number {
    let n = 0;
    for (const s of this.sockets) if (!s.closed) n++;
    return n;
  }

  /** Client → server, through the NAT. */
  send(from: SimSocket, packet: Buffer, to: TransportAddress): void {
    this.packets++;
    if (this.opts.blocked || this.opts.silent?.includes(key(to))) return;
    const source = this.outbound(from, to);
    const at = this.endpoints.findIndex((e) => key(e) === key(to));
    const isSecond = key(to) === key(this.second);
    if (at < 0 && !isSecond) return;
    if (at > 0 && this.opts.rfc5780 === false) return; // a plain server has no alternate address
    let msg;
    try {
      msg = decodeMessage(packet);
    } catch {
      return;
    }
    const handler = isSecond ? this.plainServer : this.rfc5780Server;
    const ans = handler.handle(msg, source, (isSecond ? 0 : at) as EndpointIndex, false);
    if (typeof ans === 'string') return;
    const origin = isSecond ? this.second : this.endpoints[ans.from] as TransportAddress;
    if (this.opts.silent?.includes(key(origin))) return;
    const response = Buffer.from(ans.response);
    const dest = v4(source.address, ans.port);
    setImmediate(() => this.inbound(origin, dest, response));
  }

  private outbound(from: SimSocket, to: TransportAddress): TransportAddress {
    if (!this.natted) return from.local;
    const m = this.opts.mapping ?? 'endpoint-independent';
    const k = m === 'endpoint-independent' ? `${from.local.port}` : m === 'address-dependent' ? `${from.local.port}|${to.address}` : `${from.local.port}|${key(to)}`;
    let port = this.mappings.get(k);
    if (port === undefined) {
      port = this.nextPublicPort++;
      this.mappings.set(k, port);
      this.publicPorts.set(port, { socket: from, sentTo: new Set() });
    }
    const entry = this.publicPorts.get(port);
    entry?.sentTo.add(to.address);
    entry?.sentTo.add(key(to));
    return v4(this.publicIp, port);
  }

  /** Server → client, through the NAT's filter. */
  private inbound(origin: TransportAddress, dest: TransportAddress, packet: Buffer): void {
    if (!this.natted) {
      for (const s of this.sockets) if (key(s.local) === key(dest)) s.deliver(packet);
      return;
    }
    const entry = this.publicPorts.get(dest.port);
    if (!entry) return;
    const f = this.opts.filtering ?? 'endpoint-independent';
    if (f === 'address-dependent' && !entry.sentTo.has(origin.address)) return;
    if (f === 'address-and-port-dependent' && !entry.sentTo.has(key(origin))) return;
    entry.socket.deliver(packet);
  }
}

class SimSocket implements DatagramSocket {
  readonly local: TransportAddress;
  closed = false;
  private readonly sim: NatSim;
  private readonly listeners: Array<(p: Buffer) => void> = [];

  constructor(sim: NatSim, local: TransportAddress) {
    this.sim = sim;
    this.local = local;
  }

  send(packet: Buffer, to: TransportAddress): void {
    if (!this.closed) this.sim.send(this, packet, to);
  }

  onMessage(listener: (p: Buffer) => void): void {
    this.listeners.push(listener);
  }

  deliver(packet: Buffer): void {
    if (this.closed) return;
    for (const l of this.listeners) l(packet);
  }

  close(): void {
    this.closed = true;
  }
}
