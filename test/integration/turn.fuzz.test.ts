/**
 * Fuzzing the TURN port of a real `p2pd serve` (two workers): random datagrams, truncated and
 * mutated copies of a real exchange, ChannelData with lying lengths, correctly signed requests
 * with malformed attribute values, and TCP streams of all of it. No worker may die and nothing
 * may outlive its lifetime: afterwards turn_sessions_active is back to where it started.
 * Deterministic: the PRNG seed is printed and can be set with FUZZ_SEED.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { P2pdProcess } from '../helpers/p2pd.ts';
import { metricValue } from '../helpers/stunClient.ts';
import { seededRandom } from '../helpers/random.ts';
import { TurnTestClient, UdpPeer, startTurnServer } from '../helpers/turnClient.ts';
import { Attr, MessageClass, MessageWriter, Method, messageType, newTransactionId } from '../../src/stun/index.ts';

const TURN_ATTRS = [
  Attr.ChannelNumber, Attr.Lifetime, Attr.XorPeerAddress, Attr.Data, Attr.XorRelayedAddress, Attr.RequestedAddressFamily,
  Attr.EvenPort, Attr.RequestedTransport, Attr.DontFragment, Attr.ReservationToken, Attr.AdditionalAddressFamily,
  Attr.PasswordAlgorithm, Attr.PasswordAlgorithms, Attr.Userhash, Attr.ConnectionId, Attr.Software, Attr.ErrorCode, 0x7f7f, 0xc0c0,
];
const METHODS = [Method.Allocate, Method.Refresh, Method.CreatePermission, Method.ChannelBind, Method.Send, Method.Connect, Method.Data, 0x0fff];

describe('fuzzing the TURN port', () => {
  let p: P2pdProcess;
  const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const rand = seededRandom(seed);
  const int = (n: number): number => Math.floor(rand() * n);
  const bytes = (n: number): Buffer => {
    const b = Buffer.alloc(n);
    for (let k = 0; k < n; k++) b[k] = int(256);
    return b;
  };

  // Whatever a failing test leaves open would keep the runner alive: everything is closed here.
  const closers: (() => void)[] = [];

  before(async () => {
    p = await startTurnServer({ workers: 2, args: ['--roles', 'stun,turn', '--user', 'u:p', '--allow-peer', '127.0.0.0/8', '--max-lifetime', '4', '--user-quota', '0'] });
  });
  after(async () => {
    for (const close of closers) {
      try { close(); } catch { /* already closed */ }
    }
    await p.stop();
  });

  test(`random, truncated and mutated input never kills a worker nor leaks an allocation (seed ${seed})`, async (t) => {
    t.diagnostic(`FUZZ_SEED=${seed}`);
    const baseline = await metricValue(p.httpUrl, 'turn_sessions_active');

    // A real exchange to copy and mutate: Allocate, CreatePermission, ChannelBind, Refresh, Send, ChannelData.
    const corpus: Buffer[] = [];
    const x = await UdpPeer.bind();
    x.echo = true;
    const c = await TurnTestClient.connect({ port: p.port, username: 'u', password: 'p' });
    closers.push(() => x.close(), () => c.close());
    const original = c.sendRaw.bind(c);
    c.sendRaw = (b: Buffer): void => { corpus.push(Buffer.from(b)); original(b); };
    await c.allocate({ evenPort: true });
    await c.createPermission(x.address);
    await c.channelBind(0x4444, x.address);
    await c.refresh(3);
    c.sendIndication(x.address, Buffer.from('corpus'));
    c.sendChannelData(0x4444, Buffer.from('corpus channel data'));
    assert.ok(corpus.length >= 7);

    // Fuzz from another loopback address: its 401s get it rate-limited, not the checks below.
    const sockets = await Promise.all(Array.from({ length: 16 }, () => new Promise<dgram.Socket>((resolve) => {
      const s = dgram.createSocket('udp4');
      s.on('message', () => undefined);
      s.bind(0, '127.0.0.2', () => resolve(s));
    })));
    for (const s of sockets) closers.push(() => s.close());
    let n = 0;
    const send = async (b: Buffer): Promise<void> => {
      sockets[int(sockets.length)]!.send(b, p.port, '127.0.0.1');
      if (++n % 200 === 0) await sleep(2);
    };

    for (let i = 0; i < 3000; i++) {
      const b = bytes(int(600));
      const kind = int(4);
      if (kind === 0 && b.length >= 20) { b[0] = int(4); b.writeUInt32BE(0x2112a442, 4); b.writeUInt16BE(b.length - 20, 2); }
      if (kind === 1 && b.length >= 4) b[0] = 0x40 + int(0x40);
      await send(b);
    }
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.from(corpus[int(corpus.length)]!);
      for (let k = 1 + int(8); k > 0; k--) b[int(b.length)] = int(256);
      await send(b);
    }
    for (let i = 0; i < 1000; i++) {
      const b = corpus[int(corpus.length)]!;
      await send(b.subarray(0, int(b.length)));
    }
    for (let i = 0; i < 1000; i++) {
      const len = int(300);
      const b = bytes(4 + len);
      b.writeUInt16BE(0x4000 + int(0x4000), 0);
      b.writeUInt16BE([0, len, len + 1 + int(100), 0xffff, int(65536)][int(5)]!, 2);
      await send(b);
    }

    // Correctly signed requests with malformed attribute values (they pass authentication).
    const signer = await TurnTestClient.connect({ port: p.port, username: 'u', password: 'p', transport: 'tcp', localAddress: '127.0.0.3' });
    closers.push(() => signer.close());
    await signer.allocate({ lifetime: 2 }).catch(() => undefined);
    for (let i = 0; i < 600; i++) {
      const method = METHODS[int(METHODS.length)]!;
      const w = new MessageWriter().reset(messageType(method, int(4) === 0 ? MessageClass.Indication : MessageClass.Request), newTransactionId());
      for (let k = int(6); k > 0; k--) w.addAttr(TURN_ATTRS[int(TURN_ATTRS.length)]!, bytes([0, 1, 2, 3, 4, 7, 8, 20, 21, 32][int(10)]!));
      signer.addCredentials(w);
      if (int(2) === 0) w.addFingerprint();
      signer.sendRaw(w.toBuffer());
      if (i % 100 === 0) await sleep(5);
    }

    // TCP streams: frames of every kind back to back, some cut short, then closed.
    for (let i = 0; i < 30; i++) {
      const s = net.connect({ port: p.port, host: '127.0.0.1', localAddress: '127.0.0.2' });
      s.on('error', () => undefined);
      closers.push(() => s.destroy());
      const parts: Buffer[] = [];
      for (let k = 0; k < 20; k++) {
        const pick = int(3);
        if (pick === 0) parts.push(corpus[int(corpus.length)]!);
        else if (pick === 1) { const b = bytes(4 + int(64)); b[0] = 0x40 + int(0x40); parts.push(b); } else parts.push(bytes(int(64)));
      }
      s.write(Buffer.concat(parts));
    }
    await sleep(300);
    for (const close of closers.splice(0)) close();

    // Everything the fuzzing made expires within --max-lifetime (4 s) plus the 1 s sweep.
    let active = -1;
    for (let i = 0; i < 80; i++) {
      active = await metricValue(p.httpUrl, 'turn_sessions_active');
      if (active === baseline) break;
      await sleep(100);
    }
    assert.equal(active, baseline, 'allocations outlived their lifetime');
    assert.doesNotMatch(p.output(), /worker died|uncaught|TypeError|RangeError/i);
    assert.ok(await metricValue(p.httpUrl, 'stun_dropped_packets_total') > 0, 'malformed input was counted');

    // Still serving.
    const y = await UdpPeer.bind();
    y.echo = true;
    const fresh = await TurnTestClient.connect({ port: p.port, username: 'u', password: 'p', localAddress: '127.0.0.4' });
    closers.push(() => y.close(), () => fresh.close());
    await fresh.allocate();
    await fresh.channelBind(0x4001, y.address);
    fresh.sendChannelData(0x4001, Buffer.from('still alive'));
    assert.equal((await fresh.nextData())?.data.toString(), 'still alive');
    await fresh.refresh(0);
  });
});
