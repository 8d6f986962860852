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
  readonly tls?: {
    readonly cert: Buffer;
    readonly key: Buffer;
    /** A client that has not finished its handshake by then is closed (a silent or dribbling ClientHello). */
    readonly handshakeTimeoutMs: number;
    /** A client closed before its handshake finished: timed out, or failed. */
    readonly onHandshakeError: (timedOut: boolean) => void;
  };
}

export interface StreamListener {
  readonly server: net.Server;
  /** Stops accepting and closes every connection, those still in their TLS handshake included. */
  close(): Promise<void>;
}

function secureContextOptions(cert: Buffer, key: Buffer): tls.SecureContextOptions {
  return { cert, key, minVersion: 'TLSv1.2' };
}

/**
 * Gives a TLS listener a new certificate and key (docs/operations.md "Reloading the TLS
 * certificate"): connections from now on get them; open ones keep the session they negotiated.
 * Throws, keeping the old pair, when the two do not load or do not belong together.
 */
export function replaceTlsCredentials(listener: StreamListener, cert: Buffer, key: Buffer): void {
  if (!(listener.server instanceof tls.Server)) throw new TypeError('not a TLS listener');
  listener.server.setSecureContext(secureContextOptions(cert, key));
}

/**
 * Listens; `onConnection` gets each TCP connection, or each TLS connection once its handshake
 * is done. Until then a TLS connection is only the listener's: it is held at most
 * `handshakeTimeoutMs`.
 */
export function listenStream(opts: StreamListenOptions, onConnection: (socket: net.Socket) => void): Promise<StreamListener> {
  const t = opts.tls;
  const server = t
    ? tls.createServer({ ...secureContextOptions(t.cert, t.key), handshakeTimeout: t.handshakeTimeoutMs }, onConnection)
    : net.createServer({ noDelay: true }, onConnection);
  // Every accepted TCP connection (under TLS: the raw one), so that closing reaches them all.
  const raw = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    raw.add(s);
    s.once('close', () => raw.delete(s));
  });
  if (t) {
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
      t.onHandshakeError(err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT');
      socket.destroy();
    });
  }
  const listener: StreamListener = {
    server,
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      for (const s of raw) s.destroy();
    }),
  };
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: opts.address, port: opts.port, exclusive: true, reusePort: opts.reusePort, ipv6Only: opts.ipv6Only ?? false, backlog: 4096 }, () => {
      server.off('error', reject);
      resolve(listener);
    });
  });
}
