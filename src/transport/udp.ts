/**
 * UDP sockets for the STUN/TURN listeners. Several worker processes bind the same address and
 * port with SO_REUSEPORT (Node 24 dgram `reusePort`); the kernel hashes each 4-tuple to one
 * socket, so a client's 5-tuple always reaches the same worker.
 */
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { UdpIo } from '../config/config.ts';
import { ADDON_PATH, loadUdpBatch } from './batchGroup.ts';
import { BatchUdpSocket } from './batchUdp.ts';

export interface UdpBindOptions {
  readonly address: string;
  readonly port: number;
  readonly reusePort: boolean;
  /** For `::`: accept IPv6 only (the IPv4 side has its own socket). */
  readonly ipv6Only?: boolean;
  readonly recvBufferSize?: number;
  readonly sendBufferSize?: number;
  readonly io?: UdpIo;
}

type LookupCallback = (err: Error | null, address: string, family: number) => void;

/**
 * dgram resolves the destination of every unconnected `send` through `lookup`, by default
 * `dns.lookup`, which defers even a literal IP to the next tick (and allocates for it). Our
 * destinations are always literal IPs — a client's source, a TURN peer — so answer at once.
 */
export const literalLookup4 = (address: string, _options: unknown, callback: LookupCallback): void => callback(null, address, 4);
export const literalLookup6 = (address: string, _options: unknown, callback: LookupCallback): void => callback(null, address, 6);

/** A UDP socket whose sends go to literal IP addresses without a DNS detour. */
export function createLiteralUdpSocket(family: 4 | 6, opts: { reusePort?: boolean; ipv6Only?: boolean } = {}): dgram.Socket {
  return dgram.createSocket({
    type: family === 4 ? 'udp4' : 'udp6',
    lookup: (family === 4 ? literalLookup4 : literalLookup6) as unknown as dgram.SocketOptions['lookup'],
    reuseAddr: opts.reusePort ?? false,
    reusePort: opts.reusePort ?? false,
    ipv6Only: opts.ipv6Only ?? false,
  });
}

export function bindUdp(opts: UdpBindOptions): Promise<dgram.Socket> {
  const io = opts.io ?? 'dgram';
  if (io !== 'dgram') {
    const lib = loadUdpBatch();
    if (lib) {
      try {
        // Shaped like the dgram.Socket subset the listeners use (see batchUdp.ts).
        return Promise.resolve(new BatchUdpSocket(lib, opts.address, opts.port, opts.reusePort, opts.ipv6Only ?? false) as unknown as dgram.Socket);
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
    }
    if (io === 'batch') return Promise.reject(new Error(`--udp-io batch: the udpbatch addon is not built (${ADDON_PATH}); run \`npm run build:native\``));
  }
  const socket = createLiteralUdpSocket(isIPv6(opts.address) ? 6 : 4, { reusePort: opts.reusePort, ipv6Only: opts.ipv6Only ?? false });
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      socket.close();
      reject(err);
    };
    socket.once('error', onError);
    // exclusive: in a cluster worker, bind this process's own socket instead of sharing the
    // primary's handle; the kernel then balances between the workers' sockets.
    socket.bind({ address: opts.address, port: opts.port, exclusive: true }, () => {
      socket.off('error', onError);
      const size = 4 * 1024 * 1024;
      try {
        socket.setRecvBufferSize(opts.recvBufferSize ?? size);
        socket.setSendBufferSize(opts.sendBufferSize ?? size);
      } catch {
        // The kernel caps buffer sizes at net.core.rmem_max; the default still works.
      }
      resolve(socket);
    });
  });
}

export function closeUdp(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}
