/**
 * The two ends of the delay measurement (lab/delayCheck.ts), each run as a child process inside a
 * lab namespace. Each probe carries its sequence number and its send time on CLOCK_MONOTONIC
 * (process.hrtime), which every namespace of the machine shares, so the receiver's own clock gives
 * the one-way delay directly.
 *
 *   node lab/delayProbe.ts send HOST PORT RATE COUNT SIZE   paced probes; prints {"sent":N,"errors":E}
 *   node lab/delayProbe.ts recv PORT                        prints "ready", then "SEQ SENT_NS RECV_NS" per probe
 */
import { createSocket } from 'node:dgram';

function send(host: string, port: number, rate: number, count: number, size: number): void {
  const sock = createSocket('udp4');
  sock.connect(port, host, () => {
    const start = process.hrtime.bigint();
    let sent = 0;
    let pending = 0;
    let errors = 0;
    const finish = (): void => {
      if (sent < count || pending > 0) return;
      process.stdout.write(`${JSON.stringify({ sent, errors })}\n`);
      sock.close();
    };
    const tick = (): void => {
      const due = Math.min(count, Math.floor((Number(process.hrtime.bigint() - start) / 1e9) * rate) + 1);
      while (sent < due) {
        const b = Buffer.alloc(size);
        b.writeUInt32BE(sent, 0);
        b.writeBigUInt64BE(process.hrtime.bigint(), 4);
        pending++;
        sent++;
        sock.send(b, (err) => {
          if (err) errors++;
          pending--;
          finish();
        });
      }
      if (sent < count) setTimeout(tick, 1);
    };
    tick();
  });
}

function recv(port: number): void {
  // 4 MB (the kernel doubles it, up to net.core.rmem_max): a receiver paused by a loaded machine
  // must not lose probes the stage delivered.
  const sock = createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  let out = '';
  let flushing = false;
  sock.on('message', (msg) => {
    const now = process.hrtime.bigint();
    if (msg.length < 12) return;
    out += `${msg.readUInt32BE(0)} ${msg.readBigUInt64BE(4)} ${now}\n`;
    if (!flushing) {
      flushing = true;
      setImmediate(() => {
        flushing = false;
        process.stdout.write(out);
        out = '';
      });
    }
  });
  sock.bind(port, () => process.stdout.write('ready\n'));
  process.stdin.resume();
  process.stdin.on('end', () => {
    process.stdout.write(out);
    process.exit(0);
  });
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'send') send(args[0] as string, Number(args[1]), Number(args[2]), Number(args[3]), Number(args[4]));
else if (mode === 'recv') recv(Number(args[0]));
else {
  process.stderr.write('usage: delayProbe.ts send HOST PORT RATE COUNT SIZE | recv PORT\n');
  process.exit(2);
}
