/**
 * UDP sockets for the STUN/TURN listeners. Several worker processes bind the same address and
 * port with SO_REUSEPORT (Node 24 dgram `reusePort`); the kernel hashes each 4-tuple to one
 * socket, so a client's 5-tuple always reaches the same worker.
 */
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';

export interface UdpBindOptions {
  readonly address: string;
  readonly port: number;
  readonly reusePort: boolean;
  /** For `::`: accept IPv6 only (the IPv4 side has its own socket). */
  readonly ipv6Only?: boolean;
  readonly recvBufferSize?: number;
  readonly sendBufferSize?: number;
}

export function bindUdp(opts: UdpBindOptions): Promise<dgram.Socket> {
  const socket = dgram.createSocket({
    type: isIPv6(opts.address) ? 'udp6' : 'udp4',
    reuseAddr: opts.reusePort,
    reusePort: opts.reusePort,
    ipv6Only: opts.ipv6Only ?? false,
  });
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
