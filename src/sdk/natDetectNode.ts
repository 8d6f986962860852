/**
 * NAT detection in Node, over raw UDP (the steps of src/nat/discovery.ts, which `p2pd nat-type`
 * runs too):
 *
 * - the first STUN server answers with OTHER-ADDRESS (p2pd with `--alt-ip`, coturn with two IPs):
 *   RFC 5780 mapping (§4.3) and filtering (§4.4) tests, so the full classic type (classify.ts);
 * - otherwise the mapping test against two STUN servers (RFC 4787 §4.1): `cone` or `symmetric`;
 *   one server only: `cone` when the mapped address is the local one (no NAT), else `unknown`;
 * - no answer from any server: `UDP blocked`.
 *
 * Bounded in packets (every socket of one run shares a budget; past it sends are dropped and the
 * run ends as `unknown`) and, through natDetect.ts, in time.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import {
  BindingClient, discoverFiltering, discoverMapping, sameAddress, socketsTowards, type BindingResult,
  type DatagramSocket, type OpenSocket,
} from '../nat/discovery.ts';
import { classify } from '../nat/classify.ts';
import type { TransportAddress } from '../stun/index.ts';
import { mappingVerdict, natDetector, type NatDetector, type NatProbe, type NatType, type StunServerAddress } from './natDetect.ts';

export interface UdpProbeOptions {
  /** Sockets towards a server's address (default: node:dgram on the local address towards it). */
  readonly sockets?: (server: TransportAddress) => Promise<OpenSocket>;
  /** Host name → address (default: DNS; IP literals as they are). */
  readonly resolve?: (host: string) => Promise<{ address: string; family: 4 | 6 }>;
  /** One Binding transaction, retransmissions included (default 1000 ms). */
  readonly requestTimeoutMs?: number;
  /** Datagrams one run may send, over all its sockets (default 32). */
  readonly maxPackets?: number;
}

/** A full RFC 5780 run on a clean network sends about 15 datagrams; the rest is for retransmissions. */
export const DEFAULT_MAX_PACKETS = 32;

async function resolveDefault(host: string): Promise<{ address: string; family: 4 | 6 }> {
  const literal = isIP(host);
  if (literal !== 0) return { address: host, family: literal === 6 ? 6 : 4 };
  const r = await lookup(host);
  return { address: r.address, family: r.family === 6 ? 6 : 4 };
}

/** Sockets that share one send budget and all close when the run ends. */
class Budget {
  left: number;
  private readonly sockets = new Set<DatagramSocket>();

  constructor(max: number) {
    this.left = max;
  }

  wrap(open: OpenSocket, signal: AbortSignal): OpenSocket {
    return async () => {
      const s = await open();
      if (signal.aborted) {
        s.close();
        throw new Error('aborted');
      }
      this.sockets.add(s);
      return {
        local: s.local,
        send: (packet, to) => {
          if (this.left <= 0 || signal.aborted) return;
          this.left--;
          s.send(packet, to);
        },
        onMessage: (l) => s.onMessage(l),
        close: () => {
          this.sockets.delete(s);
          s.close();
        },
      };
    };
  }

  closeAll(): void {
    for (const s of [...this.sockets]) s.close();
  }
}

/** The probe for natDetector(): see the file comment. */
export function udpNatProbe(opts: UdpProbeOptions = {}): NatProbe {
  const sockets = opts.sockets ?? socketsTowards;
  const resolve = opts.resolve ?? resolveDefault;
  const timeoutMs = opts.requestTimeoutMs ?? 1000;
  const maxPackets = opts.maxPackets ?? DEFAULT_MAX_PACKETS;

  return async (servers: readonly StunServerAddress[], signal: AbortSignal): Promise<NatType> => {
    const budget = new Budget(maxPackets);
    const clients = new Set<BindingClient>();
    const onAbort = (): void => {
      for (const c of clients) c.close();
      budget.closeAll();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const addrs: TransportAddress[] = [];
      for (const s of servers) {
        try {
          const r = await resolve(s.host);
          addrs.push({ family: r.family, address: r.address, port: s.port });
        } catch { /* an unresolvable name is one server less */ }
      }
      const primary = addrs[0];
      if (!primary) return 'unknown';
      // One local socket asks every server: they must share its address family.
      for (let i = addrs.length - 1; i > 0; i--) if (addrs[i]?.family !== primary.family) addrs.splice(i, 1);
      const open = budget.wrap(await sockets(primary), signal);
      const socket = await open();
      const client = new BindingClient(socket, timeoutMs);
      clients.add(client);

      // Test I; a second server stands in when the first does not answer.
      let first: { server: TransportAddress; answer: BindingResult } | undefined;
      for (const server of addrs) {
        const answer = await client.request(server, 0);
        if (signal.aborted) return 'unknown';
        if (answer) {
          first = { server, answer };
          break;
        }
      }
      if (!first) return budget.left > 0 ? 'UDP blocked' : 'unknown';
      const natted = !sameAddress(first.answer.mapped, socket.local);

      const other = first.answer.other;
      if (other) {
        try {
          const mapping = natted ? await discoverMapping(client, first.server, { ...first.answer, other }) : 'endpoint-independent';
          const filtering = await discoverFiltering(open, first.server, timeoutMs);
          return classify({ reachable: true, natted, mapping, filtering });
        } catch {
          // The alternate address does not answer (or the budget ran out): the mapping test below.
        }
        if (signal.aborted) return 'unknown';
      }

      const second = addrs.find((a) => a !== first.server);
      if (second) {
        const t2 = await client.request(second, 0);
        if (t2) return mappingVerdict(first.answer.mapped, t2.mapped);
      }
      return natted ? 'unknown' : 'cone';
    } finally {
      signal.removeEventListener('abort', onAbort);
      onAbort();
    }
  };
}

/** The process's detector on node:dgram (node.ts hands it to connect() and serve()). */
export const nodeNatDetector: NatDetector = natDetector(udpNatProbe());
