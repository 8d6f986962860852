/** Free ports on loopback for tests that start real servers. */
import dgram from 'node:dgram';
import net from 'node:net';

/**
 * Where freePort looks: below Linux's ephemeral range (32768-60999). A port the kernel hands out
 * as ephemeral can be taken by any test's outgoing connection between choosing it and binding
 * it (CI once failed on `EADDRINUSE 127.0.0.1:33523` that way); one picked here at random
 * collides only with another test's pick in the same instant. Above HIGH, up to the ephemeral
 * range, are the test servers' relay ranges (turnClient.ts startTurnServer), each held by one.
 */
const LOW = 10000;
const HIGH = 21000;

/** A port free for both UDP and TCP on `host` right now (the test binds it next). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return freePortWith(0, host);
}

/**
 * A free port whose partner `port + offset` is free too (and below the ephemeral range), e.g.
 * a Redis Cluster node's bus port at +10000.
 */
export async function freePortWith(offset: number, host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW - offset));
    if (!await tcpFree(port, host) || !await udpFree(port, host)) continue;
    if (offset === 0 || await tcpFree(port + offset, host)) return port;
  }
  throw new Error('no free port');
}

function tcpFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

function udpFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    s.once('error', () => resolve(false));
    s.bind(port, host, () => s.close(() => resolve(true)));
  });
}

/** `count` free ports, each with the next one (port + 1) free as well when `pairs` is set. */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < count) out.add(await freePort(host));
  return [...out];
}
