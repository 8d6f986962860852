// TURN request handling in one process (RFC 8656): a TurnServer with its policies handed in, a
// UDP socket in front of it that does what the STUN front door does (decode, dispatch), and a
// TURN client on loopback. No p2pd is spawned; the events the metrics count are watched instead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { pino } from 'pino';
import { Attr, attrValue, checkMessageIntegrity, decodeMessage, findAttr, isStunMessage, readAddress } from '../stun/index.ts';
import { TurnTestClient, TurnError, UdpPeer } from '../../test/helpers/turnClient.ts';
import { TurnAuthenticator } from './auth.ts';
import { AuthLimiter } from './authLimiter.ts';
import { isChannelDataFrame } from './channelData.ts';
import type { TurnEventMap } from './events.ts';
import { PeerPolicy } from './peerPolicy.ts';
import { LocalReservationClient } from './reservationClient.ts';
import { Reservations } from './reservations.ts';
import { TurnServer } from './server.ts';

const USER = { name: 'alice', password: 'wonderland' };
const CHANNEL = 0x4001;

interface Harness {
  readonly turn: TurnServer;
  readonly port: number;
  readonly minPort: number;
  readonly maxPort: number;
  /** Every event the server emitted, in order, as [name, ...arguments]. */
  readonly events: [keyof TurnEventMap, ...unknown[]][];
  client(): Promise<TurnTestClient>;
  close(): void;
}

/** A TurnServer on 127.0.0.1; peers on loopback are allowed (as --allow-peer 127.0.0.0/8). */
async function startTurn(limits: { userQuota?: number } = {}): Promise<Harness> {
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  const port = udp.address().port;
  // Relay ports below Linux's ephemeral range, where the clients' own sockets do not land.
  const minPort = 10000 + Math.floor(Math.random() * 21000);
  const maxPort = minPort + 199;
  const peers = new PeerPolicy([{ family: 4, address: '127.0.0.0', prefix: 8 }], [], {
    own: ['127.0.0.1'], relay: [['127.0.0.1']], servicePorts: [port],
  });
  const book = new Reservations(
    { minPort, maxPort, maxAllocations: 0, userQuota: limits.userQuota ?? 0 },
    (p, live) => peers.setLivePort(p, live),
  );
  const turn = new TurnServer({
    auth: new TurnAuthenticator({ realm: 'test.p2pd', authSecret: '', users: [USER], nonceKey: randomBytes(32), nonceLifetimeSec: 600 }),
    authLimiter: new AuthLimiter(),
    relays: [{ family: 4, bind: '127.0.0.1', advertised: '127.0.0.1' }],
    maxLifetimeSec: 3600,
    permissionLifetimeSec: 300,
    channelLifetimeSec: 600,
    maxBps: 0,
    peers,
    reservations: new LocalReservationClient(book),
    udpIo: 'dgram',
    log: pino({ level: 'silent' }),
    maxPermissions: 10,
    maxChannels: 10,
    closedSessionTtlSec: 3600,
  });
  const events: Harness['events'] = [];
  for (const name of ['allocationCreated', 'allocationRefreshed', 'allocationDeleted', 'authRefused', 'limitRefused', 'peerRefused'] as const) {
    turn.events.on(name, (...args: unknown[]) => events.push([name, ...args]));
  }
  // What the STUN front door does for a UDP listener: ChannelData to the relay, the rest decoded.
  const ingress = { endpoint: 0, slot: 0, udp, stream: undefined } as const;
  udp.on('message', (buf, rinfo) => {
    const source = { family: 4 as const, address: rinfo.address, port: rinfo.port };
    if (isChannelDataFrame(buf)) turn.onChannelData(buf, source, ingress);
    else if (isStunMessage(buf)) turn.onStun(decodeMessage(buf), source, ingress);
  });
  turn.start();
  const clients: TurnTestClient[] = [];
  return {
    turn, port, minPort, maxPort, events,
    async client() {
      const c = await TurnTestClient.connect({ port, username: USER.name, password: USER.password });
      clients.push(c);
      return c;
    },
    close() {
      for (const c of clients) c.close();
      turn.stop();
      udp.close();
    },
  };
}

const named = (h: Harness, name: keyof TurnEventMap): unknown[][] => h.events.filter((e) => e[0] === name).map((e) => e.slice(1));
/**
 * The distinct values of an event's argument `i`, in order of first appearance: a request the
 * client sent again before its answer came (a loaded machine) is handled, and told, again.
 */
const told = (h: Harness, name: keyof TurnEventMap, i = 0): unknown[] => [...new Set(named(h, name).map((args) => args[i]))];

test('Allocate without credentials gets 401 with REALM and NONCE; with them, a relayed address on the relay port range', async (t) => {
  const h = await startTurn();
  t.after(() => h.close());
  const c = await h.client();
  const a = await c.allocate({ lifetime: 300 });
  assert.deepEqual(c.errors, [401], 'the first Allocate is challenged, the second succeeds');
  assert.equal(a.relayed.length, 1);
  assert.equal(a.relayed[0]!.address, '127.0.0.1');
  assert.ok(a.relayed[0]!.port >= h.minPort && a.relayed[0]!.port <= h.maxPort, `relay port ${a.relayed[0]!.port}`);
  assert.equal(a.mapped.port, c.localPort, 'XOR-MAPPED-ADDRESS is the client as the server saw it');
  assert.equal(a.lifetime, 300);
  assert.deepEqual(told(h, 'authRefused'), ['challenge']);
  assert.equal(named(h, 'allocationCreated').length, 1, 'a retransmitted Allocate gets the same answer, not a second allocation');
  assert.equal(h.turn.stats().allocations, 1);
});

test('Allocate with a wrong password gets 401 again, counted as bad_integrity, and allocates nothing', async (t) => {
  const h = await startTurn();
  t.after(() => h.close());
  const c = await TurnTestClient.connect({ port: h.port, username: USER.name, password: 'not-it' });
  t.after(() => c.close());
  await assert.rejects(c.allocate(), (err: unknown) => err instanceof TurnError && err.code === 401);
  assert.deepEqual(told(h, 'authRefused'), ['challenge', 'bad_integrity']);
  assert.equal(named(h, 'allocationCreated').length, 0);
});

test('CreatePermission to a denied peer gets 403; to an allowed one it lets a Send indication through', async (t) => {
  const h = await startTurn();
  t.after(() => h.close());
  const peer = await UdpPeer.bind();
  t.after(() => peer.close());
  const c = await h.client();
  const a = await c.allocate();
  await assert.rejects(
    c.createPermission({ family: 4, address: '10.0.0.6', port: 9 }),
    (err: unknown) => err instanceof TurnError && err.code === 403,
  );
  assert.deepEqual(told(h, 'peerRefused'), ['denied'], 'a private range outside --allow-peer');

  await c.createPermission(peer.address);
  c.sendIndication(peer.address, Buffer.from('over send'));
  const got = await peer.next();
  assert.equal(got?.data.toString(), 'over send');
  assert.equal(got?.from.port, a.relayed[0]!.port, 'the peer hears the relayed address');
});

test('ChannelBind lets ChannelData through both ways', async (t) => {
  const h = await startTurn();
  t.after(() => h.close());
  const peer = await UdpPeer.bind();
  t.after(() => peer.close());
  peer.echo = true;
  const c = await h.client();
  await c.allocate();
  await c.channelBind(CHANNEL, peer.address);
  c.sendChannelData(CHANNEL, Buffer.from('over a channel'));
  assert.equal((await peer.next())?.data.toString(), 'over a channel');
  const back = await c.nextData();
  assert.equal(back?.channel, CHANNEL, 'the echo comes back on the channel');
  assert.equal(back?.data.toString(), 'over a channel');
});

test('Refresh extends an allocation; Refresh to 0 deletes it, and a request on it afterwards gets 437', async (t) => {
  const h = await startTurn();
  t.after(() => h.close());
  const c = await h.client();
  await c.allocate({ lifetime: 120 });
  assert.equal(await c.refresh(900), 900);
  assert.deepEqual(told(h, 'allocationRefreshed', 1), [900]);

  assert.equal(await c.refresh(0), 0);
  assert.deepEqual(named(h, 'allocationDeleted').map(([, reason]) => reason), ['refresh'], 'deleted once: a second Refresh finds no allocation');
  assert.equal(h.turn.stats().allocations, 0);
  await assert.rejects(c.refresh(600), (err: unknown) => err instanceof TurnError && err.code === 437);
});

test('past --user-quota an Allocate gets 486; once one is deleted, the next succeeds', async (t) => {
  const h = await startTurn({ userQuota: 1 });
  t.after(() => h.close());
  const first = await h.client();
  await first.allocate();
  const second = await h.client();
  await assert.rejects(second.allocate(), (err: unknown) => err instanceof TurnError && err.code === 486);
  assert.deepEqual(told(h, 'limitRefused'), ['user_quota']);

  await first.refresh(0);
  const a = await second.allocate();
  assert.equal(a.relayed.length, 1);
  assert.equal(named(h, 'allocationCreated').length, 2);
});

test('relay ports bound by another process in a run cost retries, not allocations: each Allocate still gets a port', async (t) => {
  const h = await startTurn();
  t.after(() => h.close());
  // Another process holds the lower half of the range as one run, as another relay's next-fit
  // leaves it. Six rounds of 20 allocations are more than the free half: the cursor goes round.
  const outside: dgram.Socket[] = [];
  t.after(() => { for (const s of outside) s.close(); });
  for (let p = h.minPort; p < h.minPort + 100; p++) {
    const s = dgram.createSocket('udp4');
    s.on('error', () => undefined);
    await new Promise<void>((resolve) => { s.once('listening', resolve); s.once('error', () => resolve()); s.bind({ port: p, address: '127.0.0.1', exclusive: true }); });
    outside.push(s);
  }
  const held = new Set(outside.flatMap((s) => { try { return [s.address().port]; } catch { return []; } }));
  for (let round = 0; round < 6; round++) {
    const clients = await Promise.all(Array.from({ length: 20 }, () => h.client()));
    const ports = [];
    for (const c of clients) {
      const a = await c.allocate();
      ports.push(a.relayed[0]!.port);
    }
    for (const port of ports) assert.ok(!held.has(port) && port >= h.minPort && port <= h.maxPort, `relay port ${port}`);
    assert.equal(new Set(ports).size, 20, 'every allocation its own port');
    for (const c of clients) await c.refresh(0);
  }
  assert.equal(named(h, 'limitRefused').length, 0);
});

test('a request of a method TURN does not serve gets 400 without authentication', async (t) => {
  const h = await startTurn();
  t.after(() => h.close());
  const c = await h.client();
  // Connect (RFC 6062 §4.3) is not offered.
  await assert.rejects(c.request(0x000a), (err: unknown) => err instanceof TurnError && err.code === 400);
  assert.equal(named(h, 'authRefused').length, 0);
});

test('while the node drains, a new Allocate gets 300 Try Alternate naming the other node, integrity-protected; allocations already here keep refreshing', async (t) => {
  const h = await startTurn();
  t.after(() => h.close());
  const before = await h.client();
  await before.allocate({ lifetime: 300 });
  h.turn.setAlternate({ ip4: '192.0.2.7', port: 3478, tlsPort: 5349, tlsHost: 'turn-b.example' });

  const c = await h.client();
  const err = await c.allocate().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof TurnError && err.code === 300, `300, got ${String(err)}`);
  const alt = readAddress(attrValue(err.response, findAttr(err.response, Attr.AlternateServer)));
  assert.deepEqual(alt, { family: 4, address: '192.0.2.7', port: 3478 });
  assert.equal(findAttr(err.response, Attr.AlternateDomain), -1, 'ALTERNATE-DOMAIN is for TLS clients only');
  // RFC 8489 §10: a client must be able to tell our redirect from a forged one.
  assert.ok(checkMessageIntegrity(err.response, c.credentials.key as Buffer), 'the 300 carries MESSAGE-INTEGRITY with the client\'s key');
  assert.deepEqual(told(h, 'limitRefused'), ['draining']);

  assert.equal(await before.refresh(600), 600, 'an allocation made before the drain refreshes as usual');
  assert.equal(h.turn.stats().allocations, 1, 'the redirected client holds nothing here');

  h.turn.setAlternate(undefined);
  const a = await c.allocate();
  assert.equal(a.relayed.length, 1, 'with the drain called off, allocations are made here again');
});

test('a drain with no alternate for the client\'s family serves it here rather than send it nowhere', async (t) => {
  const h = await startTurn();
  t.after(() => h.close());
  h.turn.setAlternate({ ip6: '2001:db8::7', port: 3478 });
  const c = await h.client();
  assert.equal((await c.allocate()).relayed.length, 1);
  assert.deepEqual(told(h, 'limitRefused'), []);
});
