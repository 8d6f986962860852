/** Free ports on loopback for tests that start real servers. */
import dgram from 'node:dgram';
import net from 'node:net';

/** A port free for both UDP and TCP on `host` right now (the test binds it next). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, host, () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
      s.once('error', () => resolve(false));
      s.bind(port, host, () => s.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error('no free port');
}

/** `count` free ports, each with the next one (port + 1) free as well when `pairs` is set. */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < count) out.add(await freePort(host));
  return [...out];
}
