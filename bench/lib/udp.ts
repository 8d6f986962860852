/** Waits until a UDP STUN server answers a Binding request. */
import dgram from 'node:dgram';

export function stunAnswers(host: string, port: number, timeoutMs = 300): Promise<boolean> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const req = Buffer.from('000100002112a442000000000000000000000001', 'hex');
    const timer = setTimeout(() => { s.close(); resolve(false); }, timeoutMs);
    s.on('message', (m) => {
      if (m[0] === 0x01 && m[1] === 0x01) {
        clearTimeout(timer);
        s.close();
        resolve(true);
      }
    });
    s.on('error', () => { clearTimeout(timer); s.close(); resolve(false); });
    s.send(req, port, host);
  });
}
