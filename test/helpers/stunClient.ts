/** A minimal STUN client over UDP or TCP for integration tests, built on our codec. */
import dgram from 'node:dgram';
import net from 'node:net';
import { decodeMessage, stunFrameLength, type StunMessage } from '../../src/stun/index.ts';

/** Sends `packet` over UDP from a fresh socket and resolves with the first answer, or undefined. */
export function udpTransaction(packet: Buffer, port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<{ msg: StunMessage; from: dgram.RemoteInfo; local: number } | undefined> {
  return new Promise((resolve) => {
    const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const timer = setTimeout(() => { s.close(); resolve(undefined); }, timeoutMs);
    s.on('message', (buf, from) => {
      clearTimeout(timer);
      const local = s.address().port;
      s.close();
      resolve({ msg: decodeMessage(Buffer.from(buf)), from, local });
    });
    s.bind(0, () => s.send(packet, port, host));
  });
}

/** Opens a TCP connection, sends `packet`, resolves with the first complete STUN frame. */
export function tcpTransaction(packet: Buffer, port: number, host = '127.0.0.1', timeoutMs = 2000): Promise<{ msg: StunMessage; local: number }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, host);
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('tcp timeout')); }, timeoutMs);
    sock.on('connect', () => sock.write(packet));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const len = stunFrameLength(buf, 0);
      if (len > 0) {
        clearTimeout(timer);
        const local = sock.localPort ?? 0;
        sock.destroy();
        resolve({ msg: decodeMessage(buf.subarray(0, len)), local });
      }
    });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

/** Value of one sample line of Prometheus text, e.g. `stun_requests_total{status="success"`. */
export async function metricValue(httpUrl: string, prefix: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) if (line.startsWith(prefix)) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  return total;
}
