/**
 * The bare Node responder of the STUN benchmark: N processes with SO_REUSEPORT answering every
 * datagram with a Binding success header, no parsing. What Node itself can do on this machine.
 *   node bench/nodeEcho.ts HOST PORT PROCESSES
 */
import cluster from 'node:cluster';
import dgram from 'node:dgram';

const [host = '127.0.0.1', portRaw = '3478', procsRaw = '2'] = process.argv.slice(2);
if (cluster.isPrimary) {
  for (let i = 0; i < Number(procsRaw); i++) cluster.fork();
  process.on('SIGTERM', () => { for (const w of Object.values(cluster.workers ?? {})) w?.kill(); process.exit(0); });
} else {
  const s = dgram.createSocket({ type: 'udp4', reusePort: true, reuseAddr: true });
  s.on('message', (m, r) => {
    m[0] = 0x01;
    m[1] = 0x01;
    s.send(m, r.port, r.address);
  });
  s.bind({ address: host, port: Number(portRaw), exclusive: true });
}
