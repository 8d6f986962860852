/**
 * The forwarding table in the addon (docs/turn.md "Forwarding in the addon"): once a channel has
 * relayed a datagram through the TypeScript relay, its ChannelData moves both ways in the addon —
 * and only while the relay's rules would let it: not past Refresh 0 or a lapsed channel or
 * permission, not past --max-bps, not for another port of the same peer, not for malformed or
 * random frames. Real UDP clients and peers against a p2pd process with two workers; what was
 * forwarded is read from turn_forwarded_packets_total and turn_relay_bytes_total.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { P2pdProcess } from '../helpers/p2pd.ts';
import { metricValue } from '../helpers/stunClient.ts';
import { seededRandom } from '../helpers/random.ts';
import { TurnError, TurnTestClient, UdpPeer, startTurnServers } from '../helpers/turnClient.ts';
import { eventually } from '../helpers/wait.ts';
import { loadUdpBatch } from '../../src/transport/batchGroup.ts';

const TO_PEER = 'turn_forwarded_packets_total{direction="client_to_peer"';
const TO_CLIENT = 'turn_forwarded_packets_total{direction="peer_to_client"';
const BYTES_TO_PEER = 'turn_relay_bytes_total{direction="client_to_peer"';
const BYTES_TO_CLIENT = 'turn_relay_bytes_total{direction="peer_to_client"';
/** Datagrams per burst: each burst is awaited whole before the next, so no socket buffer overflows. */
const BURST = 25;

describe('TURN forwarding in the addon', { skip: loadUdpBatch() === undefined ? 'the udpbatch addon is not built' : false }, () => {
  const servers: P2pdProcess[] = [];
  const clients: TurnTestClient[] = [];
  const peers: UdpPeer[] = [];
  let fwd: P2pdProcess;
  let life: P2pdProcess;
  let bw: P2pdProcess;
  let closed: P2pdProcess;
  const connect = async (server: P2pdProcess): Promise<TurnTestClient> => {
    const c = await TurnTestClient.connect({ port: server.port, username: 'u', password: 'p' });
    clients.push(c);
    return c;
  };
  const peer = async (host?: string): Promise<UdpPeer> => {
    const x = await UdpPeer.bind(host);
    peers.push(x);
    return x;
  };
  const metric = (server: P2pdProcess, name: string): Promise<number> => metricValue(server.httpUrl, name);

  /** Client → peer over `channel`: `count` datagrams in bursts, each burst received before the next. */
  const toPeer = async (c: TurnTestClient, channel: number, x: UdpPeer, count: number, tag: string): Promise<string[]> => {
    const got: string[] = [];
    for (let sent = 0; sent < count;) {
      const n = Math.min(BURST, count - sent);
      for (let k = 0; k < n; k++) c.sendChannelData(channel, Buffer.from(`${tag} ${sent + k}`));
      sent += n;
      for (let k = 0; k < n; k++) {
        const r = await x.next(5000);
        if (r === undefined) break;
        got.push(r.data.toString());
      }
    }
    return got;
  };
  /** Peer → client (to `relayPort`): `count` datagrams, in bursts, as received on `channel`. */
  const toClient = async (c: TurnTestClient, x: UdpPeer, relayPort: number, relayHost: string, count: number, tag: string): Promise<{ channel: number | undefined; data: string }[]> => {
    const got: { channel: number | undefined; data: string }[] = [];
    for (let sent = 0; sent < count;) {
      const n = Math.min(BURST, count - sent);
      for (let k = 0; k < n; k++) x.socket.send(`${tag} ${sent + k}`, relayPort, relayHost);
      sent += n;
      for (let k = 0; k < n; k++) {
        const r = await c.nextData(5000);
        if (r === undefined) break;
        got.push({ channel: r.channel, data: r.data.toString() });
      }
    }
    return got;
  };
  const numbered = (tag: string, count: number): string[] => Array.from({ length: count }, (_, k) => `${tag} ${k}`);

  before(async () => {
    const common = ['--roles', 'stun,turn', '--user', 'u:p', '--allow-peer', '127.0.0.0/8', '--allow-peer', '::1/128'];
    [fwd, life, bw, closed] = await startTurnServers([
      { workers: 2, args: common },
      { args: [...common, '--permission-lifetime', '2', '--channel-lifetime', '2'] },
      { args: [...common, '--max-bps', '800000'] },
      // The default deny-list: 127.0.0.1 is an own address, whose only peers are live relay ports.
      { workers: 2, args: ['--roles', 'stun,turn', '--user', 'u:p'] },
    ], servers) as [P2pdProcess, P2pdProcess, P2pdProcess, P2pdProcess];
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const x of peers) x.close();
    await Promise.all(servers.map((s) => s.stop()));
  });

  test('after one datagram through the relay, a channel moves both ways in the addon, every byte counted', async () => {
    const c = await connect(fwd);
    const x = await peer();
    const relayed = (await c.allocate()).relayed[0]!;
    await c.channelBind(0x4001, x.address);
    c.sendChannelData(0x4001, Buffer.from('first'));
    assert.equal((await x.next())?.data.toString(), 'first');
    x.socket.send('first back', relayed.port, '127.0.0.1');
    assert.deepEqual((await c.nextData())?.data.toString(), 'first back');

    const before = await Promise.all([TO_PEER, TO_CLIENT, BYTES_TO_PEER, BYTES_TO_CLIENT].map((m) => metric(fwd, m)));
    const N = 200;
    assert.deepEqual(await toPeer(c, 0x4001, x, N, 'up'), numbered('up', N));
    const down = await toClient(c, x, relayed.port, '127.0.0.1', N, 'down');
    assert.deepEqual(down.map((d) => d.data), numbered('down', N));
    assert.ok(down.every((d) => d.channel === 0x4001), 'peer data reaches the client as ChannelData on its channel');
    const after = await Promise.all([TO_PEER, TO_CLIENT, BYTES_TO_PEER, BYTES_TO_CLIENT].map((m) => metric(fwd, m)));
    const bytes = (tag: string): number => numbered(tag, N).reduce((sum, s) => sum + Buffer.byteLength(s), 0);
    assert.equal(after[0]! - before[0]!, N, 'every datagram to the peer left from the table');
    assert.equal(after[1]! - before[1]!, N, 'every datagram to the client left from the table');
    // Exact at the scrape, not a second later: the scrape collects the table first.
    assert.equal(after[2]! - before[2]!, bytes('up'));
    assert.equal(after[3]! - before[3]!, bytes('down'));
    await c.refresh(0);
  });

  test('an IPv6 relay and peer are forwarded too', async () => {
    const c = await connect(fwd);
    const x = await peer('::1');
    const relayed = (await c.allocate({ family: 6 })).relayed[0]!;
    await c.channelBind(0x4002, x.address);
    c.sendChannelData(0x4002, Buffer.from('first'));
    assert.equal((await x.next())?.data.toString(), 'first');
    const before = await Promise.all([TO_PEER, TO_CLIENT].map((m) => metric(fwd, m)));
    const N = 50;
    assert.deepEqual(await toPeer(c, 0x4002, x, N, 'up6'), numbered('up6', N));
    assert.deepEqual((await toClient(c, x, relayed.port, '::1', N, 'down6')).map((d) => d.data), numbered('down6', N));
    const after = await Promise.all([TO_PEER, TO_CLIENT].map((m) => metric(fwd, m)));
    // The first peer → client datagram of the channel goes through the relay: it offers then.
    assert.equal(after[0]! - before[0]!, N);
    assert.ok(after[1]! - before[1]! >= N - 1, `${after[1]! - before[1]!} of ${N} to the client forwarded`);
    await c.refresh(0);
  });

  test('another port of the same peer is no channel: it arrives as a Data indication, through the relay', async () => {
    const c = await connect(fwd);
    const x = await peer();
    const other = await peer();
    const relayed = (await c.allocate()).relayed[0]!;
    await c.channelBind(0x4003, x.address);
    await c.createPermission(other.address); // same IP, another port
    c.sendChannelData(0x4003, Buffer.from('first'));
    assert.equal((await x.next())?.data.toString(), 'first');
    other.socket.send('from another port', relayed.port, '127.0.0.1');
    const r = await c.nextData();
    assert.equal(r?.data.toString(), 'from another port');
    assert.equal(r?.channel, undefined, 'a Data indication, not ChannelData');
    assert.equal(r?.peer?.port, other.address.port);
    x.socket.send('from the channel peer', relayed.port, '127.0.0.1');
    const s = await c.nextData();
    assert.equal(s?.channel, 0x4003);
    await c.refresh(0);
  });

  test('malformed and random frames at a forwarded channel: only valid ChannelData of the channel reaches the peer', async () => {
    const c = await connect(fwd);
    const x = await peer();
    await c.allocate();
    await c.channelBind(0x4004, x.address);
    c.sendChannelData(0x4004, Buffer.from('first'));
    assert.equal((await x.next())?.data.toString(), 'first');
    const malformed = await metric(fwd, 'turn_dropped_packets_total{reason="malformed"');
    // Length field past the datagram: the relay drops it as malformed, and so must the table.
    const short = Buffer.from([0x40, 0x04, 0x00, 0x64, 1, 2, 3]);
    c.sendRaw(short);
    await eventually('the short frame counted as malformed', async () => await metric(fwd, 'turn_dropped_packets_total{reason="malformed"') > malformed, 10_000);

    const random = seededRandom(15);
    const expected = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const len = 4 + Math.floor(random() * 60);
      const buf = Buffer.alloc(len);
      for (let k = 0; k < len; k++) buf[k] = Math.floor(random() * 256);
      buf[0] = 0x40 | (buf[0]! & 0x3f);
      // One in four on the bound channel, with a length that fits one in two times.
      if (i % 4 === 0) {
        buf.writeUInt16BE(0x4004, 0);
        if (i % 8 === 0) buf.writeUInt16BE(len - 4 - Math.floor(random() * (len - 3)), 2);
      }
      const dlen = buf.readUInt16BE(2);
      if (buf.readUInt16BE(0) === 0x4004 && 4 + dlen <= len) expected.add(buf.subarray(4, 4 + dlen).toString('hex'));
      c.sendRaw(buf);
      if (i % 100 === 99) await sleep(5);
    }
    c.sendChannelData(0x4004, Buffer.from('after the noise'));
    const seen: string[] = [];
    for (;;) {
      const r = await x.next(5000);
      assert.ok(r, 'the channel still forwards after the noise');
      if (r.data.toString() === 'after the noise') break;
      seen.push(r.data.toString('hex'));
    }
    for (const s of seen) assert.ok(expected.has(s), `the peer got ${s}, which no valid frame of the channel carried`);
    assert.ok(seen.length > 0, 'valid frames among the noise were relayed');
    assert.ok(await metric(fwd, 'turn_sessions_active') >= 1, 'the allocation is alive');
    await c.refresh(0);
  });

  test('Refresh 0 ends forwarding at once: nothing more leaves from the table either way', async () => {
    const c = await connect(fwd);
    const x = await peer();
    const relayed = (await c.allocate()).relayed[0]!;
    await c.channelBind(0x4005, x.address);
    c.sendChannelData(0x4005, Buffer.from('first'));
    assert.equal((await x.next())?.data.toString(), 'first');
    assert.deepEqual(await toPeer(c, 0x4005, x, 10, 'live'), numbered('live', 10));
    await c.refresh(0);
    const before = await Promise.all([TO_PEER, TO_CLIENT].map((m) => metric(fwd, m)));
    const noAllocation = await metric(fwd, 'turn_dropped_packets_total{reason="no_allocation"');
    for (let k = 0; k < 20; k++) c.sendChannelData(0x4005, Buffer.from(`gone ${k}`));
    for (let k = 0; k < 20; k++) x.socket.send(`gone back ${k}`, relayed.port, '127.0.0.1');
    // Each frame reached the relay in JS, which found no allocation: the table let all go.
    await eventually('the frames after Refresh 0 dropped by the relay', async () => await metric(fwd, 'turn_dropped_packets_total{reason="no_allocation"') >= noAllocation + 20, 10_000);
    assert.equal(await x.next(300), undefined);
    assert.equal(await c.nextData(300), undefined);
    assert.deepEqual(await Promise.all([TO_PEER, TO_CLIENT].map((m) => metric(fwd, m))), before);
  });

  test('a lapsed channel and permission are not forwarded: the relay drops, the table sends nothing', async () => {
    const c = await connect(life);
    const x = await peer();
    const relayed = (await c.allocate()).relayed[0]!;
    await c.channelBind(0x4006, x.address);
    c.sendChannelData(0x4006, Buffer.from('first'));
    assert.equal((await x.next())?.data.toString(), 'first');
    const noChannel = await metric(life, 'turn_dropped_packets_total{reason="no_channel"');
    // Lifetimes 2 s: probe until the relay drops for lack of the channel (bounded), not a fixed time.
    await eventually('the channel lapsed', async () => {
      c.sendChannelData(0x4006, Buffer.from('probe'));
      await sleep(50);
      return await metric(life, 'turn_dropped_packets_total{reason="no_channel"') > noChannel;
    }, 20_000);
    const before = await Promise.all([TO_PEER, TO_CLIENT].map((m) => metric(life, m)));
    x.received.length = 0;
    c.sendChannelData(0x4006, Buffer.from('after the channel lapsed'));
    x.socket.send('after the permission lapsed', relayed.port, '127.0.0.1');
    assert.equal(await x.next(500), undefined);
    assert.equal(await c.nextData(300), undefined);
    assert.deepEqual(await Promise.all([TO_PEER, TO_CLIENT].map((m) => metric(life, m))), before);
    await c.refresh(0);
  });

  test('a channel to another allocation of the server is forwarded while that relay port lives, and stops the moment it dies', async () => {
    const a = await connect(closed);
    const b = await connect(closed);
    const aRelay = (await a.allocate()).relayed[0]!;
    const bRelay = (await b.allocate()).relayed[0]!;
    await a.channelBind(0x4008, bRelay);
    await b.channelBind(0x4009, aRelay);
    a.sendChannelData(0x4008, Buffer.from('first'));
    assert.equal((await b.nextData(5000))?.data.toString(), 'first');
    const before = await metric(closed, TO_PEER);
    const N = 50;
    const got: string[] = [];
    for (let k = 0; k < N; k++) {
      a.sendChannelData(0x4008, Buffer.from(`relay to relay ${k}`));
      const r = await b.nextData(5000);
      assert.equal(r?.channel, 0x4009);
      got.push(r.data.toString());
    }
    assert.deepEqual(got, numbered('relay to relay', N));
    assert.ok(await metric(closed, TO_PEER) - before >= N, 'forwarded by the table');
    await b.refresh(0);
    // Every worker hears of the dead port (the book is the primary's): a ChannelBind refresh then gets 403.
    await eventually('a ChannelBind to the released relay port is refused', async () => {
      try {
        await a.channelBind(0x4008, bRelay);
        return false;
      } catch (e) {
        if (e instanceof TurnError && e.code === 403) return true;
        throw e;
      }
    });
    const forwarded = await metric(closed, TO_PEER);
    const forbidden = await metric(closed, 'turn_dropped_packets_total{reason="peer_forbidden"');
    for (let k = 0; k < 20; k++) a.sendChannelData(0x4008, Buffer.from(`to a dead port ${k}`));
    await eventually('every frame to the dead port dropped by the relay', async () => await metric(closed, 'turn_dropped_packets_total{reason="peer_forbidden"') >= forbidden + 20, 10_000);
    assert.equal(await metric(closed, TO_PEER), forwarded, 'none left from the table');
  });

  test('--max-bps holds with forwarding: the table spends only credit taken from the bucket', async () => {
    const rateBytesPerMs = 800_000 / 8 / 1000;
    const burstBytes = (800_000 / 8) * 0.2; // src/turn/bandwidth.ts BURST_SEC
    const credit = 16 * 1024; // src/turn/forwarder.ts CREDIT_BYTES: taken from the bucket before it is spent
    const relayedBefore = await metric(bw, BYTES_TO_PEER);
    const forwardedBefore = await metric(bw, TO_PEER);
    const c = await connect(bw);
    const x = await peer();
    const start = performance.now();
    await c.allocate();
    await c.channelBind(0x4007, x.address);
    const payload = Buffer.alloc(1000, 7);
    const sendStart = performance.now();
    let sent = 0;
    // 200 kB/s, twice the limit, for 3 s.
    while (performance.now() - sendStart < 3000) {
      const due = Math.floor((performance.now() - sendStart) / 10) * 2 + 2;
      while (sent < due) {
        c.sendChannelData(0x4007, payload);
        sent++;
      }
      await sleep(5);
    }
    let relayed = -1;
    for (let i = 0; i < 100; i++) {
      const now = await metric(bw, BYTES_TO_PEER) - relayedBefore;
      if (now === relayed) break;
      relayed = now;
      await sleep(100);
    }
    const elapsedMs = performance.now() - start;
    const allowed = burstBytes + rateBytesPerMs * elapsedMs;
    assert.ok(relayed <= allowed, `relayed ${relayed} B in ${Math.round(elapsedMs)} ms; the bucket allows ${Math.round(allowed)}`);
    assert.ok(relayed <= sent * payload.length);
    assert.ok(await metric(bw, TO_PEER) - forwardedBefore >= Math.floor(credit / payload.length), 'the table forwarded within its credit');
    await c.refresh(0);
  });
});
