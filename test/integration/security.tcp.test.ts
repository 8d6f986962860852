/**
 * Issue 10 item 11, driven the way the attacker did against a real `p2pd serve`: TCP and TLS
 * clients that send Binding requests and never read, that stay connected doing nothing, that
 * hold a half-sent frame or a half-done TLS handshake, that open too many connections. Each
 * test asserts the close and its counted reason, that the server's memory stays bounded, and
 * that other clients (TCP, UDP, TURN) are still served (docs/turn.md "Connection limits").
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { P2pdProcess } from '../helpers/p2pd.ts';
import { freePort } from '../helpers/ports.ts';
import { metricValue, tcpTransaction, udpTransaction } from '../helpers/stunClient.ts';
import { TurnTestClient, startTurnServer } from '../helpers/turnClient.ts';
import { MessageClass, MessageWriter, Method, messageType, newTransactionId } from '../../src/stun/index.ts';
import { eventually } from '../helpers/wait.ts';

const IDLE_SEC = 3;
const HANDSHAKE_SEC = 1;
const MAX_PER_SOURCE = 8;
const BINDING = messageType(Method.Binding, MessageClass.Request);
const BINDING_OK = messageType(Method.Binding, MessageClass.SuccessResponse);
/** How much the server's RSS may grow under one attack; unbounded, it grew ~120 MiB a second. */
const RSS_BOUND_MIB = 50;

const binding = (): Buffer => new MessageWriter().reset(BINDING, newTransactionId()).toBuffer();

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'VmRSS in /proc/<pid>/status');
  return Number(m[1]) / 1024;
}

/** Resolves when `socket` closes; rejects after `timeoutMs` (a bound for a loaded machine, not a wait). */
async function closed(socket: net.Socket, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  if (socket.closed) return 0;
  let timer: NodeJS.Timeout | undefined;
  const why = await Promise.race([
    // Not events.once: it rejects on the 'error' (ECONNRESET) that comes with the close.
    new Promise<string>((resolve) => socket.once('close', () => resolve('close'))),
    new Promise<string>((resolve) => { timer = setTimeout(() => resolve('timeout'), timeoutMs); }),
  ]);
  clearTimeout(timer);
  assert.equal(why, 'close', `the server did not close the connection within ${timeoutMs} ms`);
  return Date.now() - t0;
}

function connect(port: number, transport: 'tcp' | 'tls'): net.Socket {
  const s = transport === 'tls' ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }) : net.connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  return s;
}

async function opened(s: net.Socket, transport: 'tcp' | 'tls'): Promise<void> {
  await once(s, transport === 'tls' ? 'secureConnect' : 'connect');
}

describe('STUN/TURN TCP and TLS connection limits (one worker)', () => {
  let p: P2pdProcess;
  let tlsPort: number;
  let dir: string;
  const sockets: net.Socket[] = [];
  const clients: TurnTestClient[] = [];
  const closedBy = (transport: string, reason: string): Promise<number> =>
    metricValue(p.httpUrl, `stun_stream_closed_total{transport="${transport}",reason="${reason}"}`);

  /** Another TCP client, a UDP client and a TLS client are still answered. */
  async function othersServed(): Promise<void> {
    // Bounds for a loaded machine, not waits: each answer comes as soon as it can.
    const viaTcp = await tcpTransaction(binding(), p.port, '127.0.0.1', 10_000);
    assert.equal(viaTcp.msg.type, BINDING_OK);
    const viaUdp = await udpTransaction(binding(), p.port, '127.0.0.1', 10_000);
    assert.equal(viaUdp?.msg.type, BINDING_OK);
    const c = await TurnTestClient.connect({ port: tlsPort, transport: 'tls', username: 'alice', password: 'wonderland' });
    clients.push(c);
    const r = await c.transact(binding(), 10_000);
    assert.equal(r?.type, BINDING_OK);
    c.close();
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pd-sec-tcp-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    tlsPort = await freePort();
    p = await startTurnServer({
      args: ['--roles', 'stun,turn', '--user', 'alice:wonderland', '--allow-peer', '127.0.0.0/8',
        '--tls-port', String(tlsPort), '--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem'),
        '--tcp-idle-timeout', String(IDLE_SEC), '--tls-handshake-timeout', String(HANDSHAKE_SEC),
        '--tcp-max-per-source', String(MAX_PER_SOURCE)],
    });
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    for (const c of clients) c.close();
    await p?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test(`closes a connection past ${MAX_PER_SOURCE} from one source IP at accept, and takes new ones once others close`, async () => {
    const held: net.Socket[] = [];
    for (let i = 0; i < MAX_PER_SOURCE; i++) {
      const s = connect(p.port, 'tcp');
      sockets.push(s);
      held.push(s);
      await opened(s, 'tcp');
    }
    // Each held connection is answered: the server took it.
    await Promise.all(held.map(async (s) => {
      const answer = once(s, 'data');
      s.write(binding());
      await answer;
    }));
    const before = await closedBy('tcp', 'per_source');
    const extra = connect(p.port, 'tcp');
    sockets.push(extra);
    let answered = false;
    extra.on('data', () => { answered = true; });
    extra.on('connect', () => extra.write(binding()));
    await closed(extra, 10_000);
    assert.equal(answered, false);
    assert.equal(await closedBy('tcp', 'per_source'), before + 1);
    for (const s of held) s.destroy();
    // The server sees the closes on its own time: retry a bounded number of times.
    let ok = false;
    for (let attempt = 0; attempt < 50 && !ok; attempt++) {
      ok = await tcpTransaction(binding(), p.port).then((r) => r.msg.type === BINDING_OK, () => false);
      if (!ok) await sleep(100);
    }
    assert.ok(ok, 'a new connection is served after the others closed');
    // The next tests start with the source's connections all gone.
    await eventually('every connection closed on the server', async () => (await metricValue(p.httpUrl, 'stun_stream_connections{')) === 0, 10_000);
  });

  for (const transport of ['tcp', 'tls'] as const) {
    test(`over ${transport.toUpperCase()}, a client that sends Binding requests and never reads is paused, then closed (write_stalled); RSS stays bounded`, async (t) => {
      const port = transport === 'tls' ? tlsPort : p.port;
      const pid = p.child.pid!;
      const rss0 = rssMiB(pid);
      const answered0 = await metricValue(p.httpUrl, 'stun_requests_total{status="success"');
      const stalled0 = await closedBy(transport, 'write_stalled');
      const perSource0 = await closedBy(transport, 'per_source');
      const chunk = Buffer.concat(Array.from({ length: 2000 }, binding));
      const s = connect(port, transport);
      sockets.push(s);
      let sentBytes = 0;
      let gone = false;
      s.on('close', () => { gone = true; });
      // The attacker keeps its own side bounded (writes on 'drain'); it never reads.
      const pump = (): void => { while (!gone && s.write(chunk)) sentBytes += chunk.length; };
      s.on(transport === 'tls' ? 'secureConnect' : 'connect', pump);
      s.on('drain', pump);
      let rssMax = rss0;
      const sampler = setInterval(() => { rssMax = Math.max(rssMax, rssMiB(pid)); }, 50);
      try {
        // The server stops reading the attacker once its answers back up (closing it as
        // write_stalled below proves it was paused, should this poll miss the moment).
        await eventually('the attacker paused', async () => gone || (await metricValue(p.httpUrl, `stun_stream_paused{transport="${transport}"`)) === 1, 30_000);
        // While the attack is on, everyone else is served.
        await othersServed();
        const tookMs = await closed(s, (IDLE_SEC + 20) * 1000);
        rssMax = Math.max(rssMax, rssMiB(pid));
        const answered = (await metricValue(p.httpUrl, 'stun_requests_total{status="success"')) - answered0;
        const growth = rssMax - rss0;
        // For the report: what the attack did and what it cost the server.
        t.diagnostic(`${transport}: sent ${(sentBytes / 2 ** 20).toFixed(1)} MiB, ${answered} answered, closed after ${tookMs} ms, RSS ${rss0.toFixed(0)} → max ${rssMax.toFixed(0)} MiB (+${growth.toFixed(1)})`);
        // The attack was real: the server answered thousands before it stopped reading.
        assert.equal(await closedBy(transport, 'per_source'), perSource0, 'not refused at accept');
        assert.ok(answered > 2000, `answered ${answered}`);
        assert.ok(growth < RSS_BOUND_MIB, `RSS grew by ${growth.toFixed(1)} MiB`);
        assert.equal(await closedBy(transport, 'write_stalled'), stalled0 + 1);
      } finally {
        clearInterval(sampler);
      }
      await othersServed();
    });
  }

  test(`closes a TCP connection without allocation after ${IDLE_SEC} idle seconds; one holding an allocation stays`, async () => {
    const turn = await TurnTestClient.connect({ port: p.port, transport: 'tcp', username: 'alice', password: 'wonderland' });
    clients.push(turn);
    await turn.allocate();
    // The idle one's last message comes after the allocation's: when it goes, the allocation's
    // connection has been idle longer and was spared.
    const idle = connect(p.port, 'tcp');
    sockets.push(idle);
    await opened(idle, 'tcp');
    const idle0 = await closedBy('tcp', 'idle');
    const answer = once(idle, 'data');
    idle.write(binding());
    await answer;
    const answeredAt = Date.now();
    await closed(idle, (IDLE_SEC + 20) * 1000);
    const idleMs = Date.now() - answeredAt;
    // Not before its time (the sweep runs every quarter of the timeout).
    assert.ok(idleMs >= IDLE_SEC * 1000 * 0.7, `closed after ${idleMs} ms`);
    assert.equal(await closedBy('tcp', 'idle'), idle0 + 1);
    assert.ok(await turn.refresh(600) > 0, 'the allocation\'s connection still works');
    const r = await turn.transact(binding());
    assert.equal(r?.type, BINDING_OK);
    turn.close();
  });

  test('a half-sent frame dribbled a byte at a time is cut by the idle timer', async () => {
    const s = connect(p.port, 'tcp');
    sockets.push(s);
    await opened(s, 'tcp');
    // A Binding header announcing 1000 bytes of attributes, then one byte every 200 ms.
    const head = new MessageWriter().reset(BINDING, newTransactionId()).toBuffer();
    head.writeUInt16BE(1000, 2);
    s.write(head);
    const idle0 = await closedBy('tcp', 'idle');
    const dribble = setInterval(() => { if (!s.destroyed) s.write(Buffer.from([0])); }, 200);
    try {
      await closed(s, (IDLE_SEC + 20) * 1000);
    } finally {
      clearInterval(dribble);
    }
    assert.equal(await closedBy('tcp', 'idle'), idle0 + 1);
    await othersServed();
  });

  test(`closes a TLS connection whose handshake does not finish within ${HANDSHAKE_SEC} s: silent, or a dribbled ClientHello`, async () => {
    const timeouts0 = await closedBy('tls', 'tls_handshake_timeout');
    const silent = connect(tlsPort, 'tcp');
    sockets.push(silent);
    await opened(silent, 'tcp');
    const dribbler = connect(tlsPort, 'tcp');
    sockets.push(dribbler);
    await opened(dribbler, 'tcp');
    // A TLS handshake record header announcing 512 bytes, then a byte every 100 ms.
    dribbler.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]));
    const dribble = setInterval(() => { if (!dribbler.destroyed) dribbler.write(Buffer.from([0x01])); }, 100);
    try {
      await Promise.all([closed(silent, (HANDSHAKE_SEC + 20) * 1000), closed(dribbler, (HANDSHAKE_SEC + 20) * 1000)]);
    } finally {
      clearInterval(dribble);
    }
    await eventually('both handshake timeouts counted', async () => (await closedBy('tls', 'tls_handshake_timeout')) >= timeouts0 + 2, 5000);
    await othersServed();
  });
});
