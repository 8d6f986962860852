/**
 * TCP (and TLS) listeners for STUN/TURN. Like UDP, every worker listens on the same port with
 * SO_REUSEPORT; a connection lives in the worker that accepted it.
 */
import net from 'node:net';
import tls from 'node:tls';

export interface StreamListenOptions {
  readonly address: string;
  readonly port: number;
  readonly reusePort: boolean;
  readonly ipv6Only?: boolean;
  /** TLS when set. */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer };
}

export function listenStream(opts: StreamListenOptions, onConnection: (socket: net.Socket) => void): Promise<net.Server> {
  const server = opts.tls
    ? tls.createServer({ cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' }, onConnection)
    : net.createServer({ noDelay: true }, onConnection);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: opts.address, port: opts.port, exclusive: true, reusePort: opts.reusePort, ipv6Only: opts.ipv6Only ?? false, backlog: 4096 }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

export function closeStreamServer(server: net.Server, sockets: Iterable<net.Socket>): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    for (const s of sockets) s.destroy();
  });
}
