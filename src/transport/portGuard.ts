/**
 * Workers bind the STUN/TURN ports with SO_REUSEPORT, which would also let a second p2pd (or any
 * process of the same user with the option set) share them silently and take half the traffic.
 * Before forking, the primary binds each port once without the option: if anything holds it, the
 * start stops with a clear EADDRINUSE instead.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { isIPv6 } from 'node:net';
import { portInUse } from '../errors.ts';

function udpFree(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = dgram.createSocket(isIPv6(address) ? 'udp6' : 'udp4');
    s.once('error', () => resolve(false));
    s.bind({ address, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

function tcpFree(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: address, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

export async function assertPortsFree(address: string, ports: readonly { port: number; udp: boolean; tcp: boolean }[]): Promise<void> {
  for (const p of ports) {
    if (p.udp && !(await udpFree(address, p.port))) throw portInUse(address, p.port, 'udp');
    if (p.tcp && !(await tcpFree(address, p.port))) throw portInUse(address, p.port, 'tcp');
  }
}
