/**
 * Several relay addresses on one node (docs/turn.md "Several relay addresses"): `--relay-ip
 * 127.0.0.1,127.0.0.2` with a 4-port `--relay-ports` range holds 8 allocations, spread over both
 * addresses; a full address is passed over, 508 comes only when both are full, relaying works
 * through each, every relay address is an own address (a peer only at its live relay ports), and
 * `--external-ip PUBLIC/PRIVATE` names what each relay address is told as. Two workers: the book
 * of ports is the primary's.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { TransportAddress } from '../../src/stun/index.ts';
import type { P2pdProcess } from '../helpers/p2pd.ts';
import { metricValue } from '../helpers/stunClient.ts';
import { TurnError, TurnTestClient, UdpPeer, startTurnServers } from '../helpers/turnClient.ts';
import { eventually } from '../helpers/wait.ts';

const is = (code: number) => (e: unknown): boolean => e instanceof TurnError && e.code === code;
const v4 = (address: string, port: number): TransportAddress => ({ family: 4, address, port });
const RELAYS = ['127.0.0.1', '127.0.0.2'];
/** A range of the band tests name themselves (helpers/turnClient.ts), 4 ports on each address. */
const MIN_PORT = 32700;
const MAX_PORT = 32703;

describe('several relay addresses per node', { timeout: 120_000 }, () => {
  const servers: P2pdProcess[] = [];
  const clients: TurnTestClient[] = [];
  const peers: UdpPeer[] = [];
  let node: P2pdProcess;
  let natted: P2pdProcess;
  const connect = async (server: P2pdProcess): Promise<TurnTestClient> => {
    const c = await TurnTestClient.connect({ port: server.port, username: 'u', password: 'p' });
    clients.push(c);
    return c;
  };
  const peer = async (): Promise<UdpPeer> => {
    const x = await UdpPeer.bind('127.0.0.3');
    peers.push(x);
    return x;
  };

  before(async () => {
    const common = ['--roles', 'stun,turn', '--user', 'u:p', '--user-quota', '0', '--listen', '127.0.0.1'];
    [node, natted] = await startTurnServers([
      // Peers on 127.0.0.3 only: the relay addresses stay under the default deny-list.
      { workers: 2, args: [...common, '--relay-ip', RELAYS.join(','), '--relay-ports', `${MIN_PORT}-${MAX_PORT}`, '--allow-peer', '127.0.0.3/32'] },
      { args: [...common, '--relay-ip', '127.0.0.1', '--relay-ip', '127.0.0.2', '--external-ip', '127.0.0.21/127.0.0.1,127.0.0.22/127.0.0.2', '--relay-ports', '32710-32711'] },
    ], servers) as [P2pdProcess, P2pdProcess];
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const x of peers) x.close();
    await Promise.all(servers.map((s) => s.stop()));
  });

  /** A client with an allocation, its relayed address, and a channel to `to`. */
  const relayTo = async (c: TurnTestClient, relayed: TransportAddress, to: UdpPeer, channel: number): Promise<void> => {
    await c.channelBind(channel, to.address);
    c.sendChannelData(channel, Buffer.from(`via ${relayed.address}`));
    const got = await to.next(5000);
    assert.equal(got?.data.toString(), `via ${relayed.address}`);
    assert.deepEqual([got?.from.address, got?.from.port], [relayed.address, relayed.port], 'the peer hears the relayed address');
    to.socket.send(Buffer.from('back'), got!.from.port, got!.from.address);
    assert.equal((await c.nextData(5000))?.data.toString(), 'back');
  };

  test('every relay address is an own address: a permitted peer IP, reachable only at ports its allocations hold', async () => {
    const held: { c: TurnTestClient; relayed: TransportAddress }[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await connect(node);
      held.push({ c, relayed: (await c.allocate()).relayed[0]! });
    }
    assert.deepEqual(held.map((h) => h.relayed.address), ['127.0.0.1', '127.0.0.2', '127.0.0.1'], 'allocations alternate over the addresses');
    const [a, b] = held as [typeof held[0], typeof held[0]];
    // Relay to relay on the second address: its live port is a peer, under the default deny-list.
    await b.c.createPermission(a.relayed);
    await a.c.channelBind(0x4001, b.relayed);
    a.c.sendChannelData(0x4001, Buffer.from('relay to relay'));
    assert.equal((await b.c.nextData(5000))?.data.toString(), 'relay to relay');
    // Its other ports are not: the STUN port, a port outside the range, a port live only on the other address.
    await assert.rejects(a.c.channelBind(0x4002, v4('127.0.0.2', node.port)), is(403));
    await assert.rejects(a.c.channelBind(0x4003, v4('127.0.0.2', MAX_PORT + 1)), is(403));
    const liveOnFirstOnly = held.filter((h) => h.relayed.address === '127.0.0.1').map((h) => h.relayed.port).find((p) => p !== b.relayed.port)!;
    await assert.rejects(a.c.channelBind(0x4004, v4('127.0.0.2', liveOnFirstOnly)), is(403), `127.0.0.2:${liveOnFirstOnly} holds no allocation`);
    assert.ok((await metricValue(node.httpUrl, 'turn_peer_refused_total{reason="own_port"')) >= 3);
    // A loopback address that is not the server's stays denied by its range.
    await assert.rejects(a.c.createPermission(v4('127.0.0.4', 4000)), is(403));
    for (const h of held) await h.c.refresh(0);
  });

  test('allocations fill both relay addresses, a full one is passed over, 508 only when both are full; each relays', async () => {
    const held: { c: TurnTestClient; relayed: TransportAddress }[] = [];
    const onAddress = (address: string): number => held.filter((h) => h.relayed.address === address).length;
    for (let i = 0; i < 7; i++) {
      const c = await connect(node);
      held.push({ c, relayed: (await c.allocate()).relayed[0]! });
    }
    assert.equal(onAddress('127.0.0.1'), 4, 'the first address is full after seven');
    const eighth = await connect(node);
    const eighthRelay = (await eighth.allocate()).relayed[0]!;
    assert.equal(eighthRelay.address, '127.0.0.2', 'the next allocation gets the second address');
    held.push({ c: eighth, relayed: eighthRelay });
    assert.equal(onAddress('127.0.0.2'), 4);
    const keys = new Set(held.map((h) => `${h.relayed.address}:${h.relayed.port}`));
    assert.equal(keys.size, 8, 'eight distinct relayed addresses');
    for (const h of held) assert.ok(h.relayed.port >= MIN_PORT && h.relayed.port <= MAX_PORT, `port ${h.relayed.port}`);

    const refusedBefore = await metricValue(node.httpUrl, 'turn_limit_refusals_total{limit="relay_ports"');
    await assert.rejects((await connect(node)).allocate(), is(508), 'both full: 508');
    assert.equal(await metricValue(node.httpUrl, 'turn_limit_refusals_total{limit="relay_ports"'), refusedBefore + 1);
    assert.equal(await metricValue(node.httpUrl, 'turn_sessions_active'), 8);

    const x = await peer();
    for (const address of RELAYS) {
      const h = held.find((e) => e.relayed.address === address)!;
      await relayTo(h.c, h.relayed, x, 0x4000);
    }

    // A port freed on the second address is where the next allocation goes.
    const freed = held.find((h) => h.relayed.address === '127.0.0.2')!;
    await freed.c.refresh(0);
    const next = await connect(node);
    await eventually('the freed port is granted again', async () => {
      try {
        const r = (await next.allocate()).relayed[0]!;
        assert.deepEqual(r, freed.relayed);
        return true;
      } catch (e) {
        if (is(508)(e)) return false;
        throw e;
      }
    });
    await relayTo(next, freed.relayed, x, 0x4001);
    for (const h of held) if (h !== freed) await h.c.refresh(0);
  });

  test('--external-ip PUBLIC/PRIVATE: each relay address is told as its own public address', async () => {
    const told: string[] = [];
    for (let i = 0; i < 2; i++) told.push((await (await connect(natted)).allocate()).relayed[0]!.address);
    assert.deepEqual(told.sort(), ['127.0.0.21', '127.0.0.22']);
  });
});
