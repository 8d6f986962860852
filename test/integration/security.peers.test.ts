/**
 * Peer policy (docs/turn.md "Peer policy"): the server's own addresses are not peers, except live
 * relay ports of this node and the relay ranges of the cluster's other TURN nodes; --deny-peer
 * wins over everything. Driven as an attacker would: a client with valid TURN credentials aims
 * its allocation at the server's own STUN port. And the evidence: on a host whose only
 * address is private (a network namespace), `p2pd serve` with its defaults (no --allow-peer),
 * `p2pd device` and `p2pd connect --relay` connect over the relay.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { MessageClass, MessageWriter, Method, messageType, newTransactionId, type TransportAddress } from '../../src/stun/index.ts';
import { P2PD_BIN, ROOT, type P2pdProcess } from '../helpers/p2pd.ts';
import { metricValue } from '../helpers/stunClient.ts';
import { TurnError, TurnTestClient, UdpPeer, startTurnServers } from '../helpers/turnClient.ts';
import { createNetNs, netnsSupported, type NetNs } from '../helpers/netns.ts';
import { haveRedis, REDIS_MISSING, startRedis, type RedisServer } from '../helpers/redis.ts';
import { jsonLines, type JsonLines } from '../helpers/jsonLines.ts';
import { eventually } from '../helpers/wait.ts';

const is403 = (e: unknown): boolean => e instanceof TurnError && e.code === 403;
const v4 = (address: string, port: number): TransportAddress => ({ family: 4, address, port });
const DROPPED = 'turn_dropped_packets_total{reason="peer_forbidden"';
/** Starting several servers at once on a loaded machine takes a while. */
const READY_MS = 60_000;

function bindingRequest(): Buffer {
  return new MessageWriter().reset(messageType(Method.Binding, MessageClass.Request), newTransactionId()).toBuffer();
}

describe('peer policy: the server\'s own addresses (loopback)', { timeout: 120_000 }, () => {
  const servers: P2pdProcess[] = [];
  const clients: TurnTestClient[] = [];
  let opened: P2pdProcess;
  let closed: P2pdProcess;
  let denying: P2pdProcess;
  const connect = async (server: P2pdProcess): Promise<TurnTestClient> => {
    const c = await TurnTestClient.connect({ port: server.port, username: 'u', password: 'p' });
    clients.push(c);
    return c;
  };

  before(async () => {
    [opened, closed, denying] = await startTurnServers([
      // Loopback opened by the operator: before, this let a client reach the server's own STUN port.
      { readyTimeoutMs: READY_MS, args: ['--roles', 'stun,turn', '--user', 'u:p', '--allow-peer', '127.0.0.0/8'] },
      // Defaults: loopback denied, the server relays on 127.0.0.1; two workers share its allocations.
      { readyTimeoutMs: READY_MS, workers: 2, args: ['--roles', 'stun,turn', '--user', 'u:p', '--user-quota', '0'] },
      { readyTimeoutMs: READY_MS, args: ['--roles', 'stun,turn', '--user', 'u:p', '--allow-peer', '127.0.0.0/8', '--deny-peer', '127.0.0.1/32', '--deny-peer', '127.0.0.3/32'] },
    ], servers) as [P2pdProcess, P2pdProcess, P2pdProcess];
  });
  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(servers.map((s) => s.stop()));
  });

  test('refuses a ChannelBind to the server\'s own STUN port with 403 and drops (and counts) a Send indication there, even inside --allow-peer', async () => {
    const c = await connect(opened);
    await c.allocate();
    const stun = v4('127.0.0.1', opened.port);
    await c.createPermission(stun); // per IP: 127.0.0.1 is opened, its other ports are peers
    await assert.rejects(c.channelBind(0x4000, stun), is403);
    const dropped = await metricValue(opened.httpUrl, DROPPED);
    // The attack: a Binding request relayed to the STUN port would be answered to the relay
    // port, and come back to the client as a Data indication from 127.0.0.1:STUN.
    c.sendIndication(stun, bindingRequest());
    await eventually('the Send indication counted as peer_forbidden', async () => (await metricValue(opened.httpUrl, DROPPED)) > dropped);
    // Control: the same relay reaches a real loopback peer on another port, and nothing else came back.
    const echo = await UdpPeer.bind('127.0.0.1');
    echo.echo = true;
    try {
      c.sendIndication(echo.address, Buffer.from('control'));
      const back = await c.nextData(5000);
      assert.equal(back?.data.toString(), 'control');
      assert.equal(back?.peer?.port, echo.address.port);
      assert.equal(c.received.length, 0, 'no answer from the STUN port');
    } finally {
      echo.close();
    }
    assert.ok((await metricValue(opened.httpUrl, 'turn_peer_refused_total{reason="own_port"')) >= 1);
    // The server and its other clients are unaffected.
    const other = await connect(opened);
    await other.allocate();
  });

  test('relays between two allocations of the server under the default deny-list, across workers, and only while the port is live', async () => {
    const peers: TurnTestClient[] = [];
    for (let i = 0; i < 6; i++) peers.push(await connect(closed));
    const relays: TransportAddress[] = [];
    for (const p of peers) relays.push((await p.allocate()).relayed[0]!);
    const a = peers[0]!;
    const aRelay = relays[0]!;
    // 127.0.0.1 is denied by default, but it is where this server relays: its live relay ports are peers.
    for (let i = 1; i < peers.length; i++) {
      const b = peers[i]!;
      await b.createPermission(aRelay);
      await a.channelBind(0x4000 + i, relays[i]!);
      a.sendChannelData(0x4000 + i, Buffer.from(`hello ${i}`));
      assert.equal((await b.nextData(5000))?.data.toString(), `hello ${i}`);
    }
    // Any other port of that address stays denied: the STUN port, a free port of the relay range.
    await assert.rejects(a.channelBind(0x5000, v4('127.0.0.1', closed.port)), is403);
    // When B's allocation goes, its port is no peer any more (every worker hears of it).
    const last = peers.length - 1;
    await peers[last]!.refresh(0);
    await eventually('a ChannelBind (refresh) to a released relay port is refused', async () => {
      try {
        await a.channelBind(0x4000 + last, relays[last]!);
        return false;
      } catch (e) {
        if (is403(e)) return true;
        throw e;
      }
    });
    const dropped = await metricValue(closed.httpUrl, DROPPED);
    a.sendChannelData(0x4000 + last, Buffer.from('to a dead port'));
    await eventually('ChannelData to the dead relay port dropped and counted', async () => (await metricValue(closed.httpUrl, DROPPED)) > dropped);
    // The other pairs still work.
    a.sendChannelData(0x4001, Buffer.from('still'));
    assert.equal((await peers[1]!.nextData(5000))?.data.toString(), 'still');
  });

  test('--deny-peer closes an address inside an --allow-peer range, and the relay exception too', async () => {
    const c = await connect(denying);
    await c.allocate();
    await assert.rejects(c.createPermission(v4('127.0.0.3', 4000)), is403);
    await assert.rejects(c.createPermission(v4('127.0.0.1', 4000)), is403);
    await assert.rejects(c.channelBind(0x4000, v4('127.0.0.3', 4000)), is403);
    await c.createPermission(v4('127.0.0.2', 4000)); // the rest of the allowed range
    assert.ok((await metricValue(denying.httpUrl, 'turn_peer_refused_total{reason="deny_peer"')) >= 3);
  });
});

describe('peer policy: relay ports of the cluster\'s other TURN nodes', { timeout: 60_000, skip: haveRedis() ? false : REDIS_MISSING }, () => {
  let redis: RedisServer;
  const servers: P2pdProcess[] = [];
  const clients: TurnTestClient[] = [];
  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(servers.map((s) => s.stop()));
    await redis?.stop();
  });

  test('an allocation on node X relays to a relay port of node Y, not to Y\'s STUN port', async () => {
    redis = await startRedis();
    const common = ['--roles', 'stun,turn', '--user', 'u:p', '--redis-url', redis.url, '--heartbeat-interval', '0.2'];
    const [x, y] = await startTurnServers([
      { readyTimeoutMs: READY_MS, args: [...common, '--node-id', 'node-x', '--relay-ports', '31000-31499'] },
      { readyTimeoutMs: READY_MS, args: [...common, '--node-id', 'node-y', '--relay-ports', '32000-32499'] },
    ], servers) as [P2pdProcess, P2pdProcess];
    const a = await TurnTestClient.connect({ port: x.port, username: 'u', password: 'p' });
    const b = await TurnTestClient.connect({ port: y.port, username: 'u', password: 'p' });
    clients.push(a, b);
    const aRelay = (await a.allocate()).relayed[0]!;
    const bRelay = (await b.allocate()).relayed[0]!;
    await b.createPermission(aRelay);
    // X learns Y's relay range from the registry at its next heartbeats.
    await eventually('node X takes node Y\'s relay port as a peer', async () => {
      try {
        await a.channelBind(0x4000, bRelay);
        return true;
      } catch (e) {
        if (is403(e)) return false;
        throw e;
      }
    });
    a.sendChannelData(0x4000, Buffer.from('across nodes'));
    assert.equal((await b.nextData(5000))?.data.toString(), 'across nodes');
    await assert.rejects(a.channelBind(0x4001, v4('127.0.0.1', y.port)), is403);
    await assert.rejects(a.channelBind(0x4002, v4('127.0.0.1', 32500)), is403);
  });
});

describe('on a host whose only address is private (network namespace): npm start defaults, no --allow-peer', { timeout: 300_000, skip: netnsSupported() ?? false }, () => {
  let ns: NetNs;
  let server: ChildProcess;
  let serverOut: JsonLines;
  let device: ChildProcess | undefined;
  let deviceOut: JsonLines;
  // Inside the namespace every port is free: the defaults are used as they are.
  const http = 'http://127.0.0.1:8080';
  const env = { ...process.env };
  delete env.P2PD_TOKEN; // device and connect ask the server for development tokens, as users do
  const node = (args: string[]): ChildProcess => ns.spawn([process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT, env });

  before(async () => {
    ns = createNetNs();
    server = node([P2PD_BIN, 'serve']);
    serverOut = jsonLines(server);
    // Healthy: asked from this side of the link (the server listens on 0.0.0.0:8080).
    await eventually('p2pd serve healthy in the namespace', async () => {
      if (server.exitCode !== null) throw new Error(`p2pd serve exited:\n${serverOut.text()}`);
      try {
        return (await fetch(`http://${ns.nsIp}:8080/healthz`)).ok;
      } catch {
        return false;
      }
    }, 30_000);
    device = node([P2PD_BIN, 'device', '--id', 'cam-1', '--server', http, '--json', '--size', '320x240', '--fps', '15']);
    deviceOut = jsonLines(device);
    await deviceOut.next((e) => e.event === 'online', 30_000);
  });
  after(async () => {
    if (process.env.P2PD_E2E_DEBUG) process.stderr.write(`SERVER:\n${serverOut?.text()}\nDEVICE:\n${deviceOut?.text()}\n`);
    for (const c of [device, server]) {
      if (c && c.exitCode === null && c.signalCode === null) {
        c.kill('SIGTERM');
        await Promise.race([once(c, 'exit'), sleep(8000)]);
      }
    }
    ns?.destroy();
  });

  /**
   * `p2pd connect --relay --json`, up to 3 attempts: one may lose a race with the machine's load
   * (ICE's 20 s setup included). Before peer policy knew live relay ports, every attempt ended in
   * ICE_FAILED.
   */
  async function connectRelay(): Promise<{ path: string }> {
    let last = '';
    for (let attempt = 1; attempt <= 3; attempt++) {
      const c = node([P2PD_BIN, 'connect', '--device', 'cam-1', '--server', http, '--relay', '--json']);
      const out = jsonLines(c);
      const [code] = await once(c, 'exit') as [number | null];
      last = out.text();
      if (code === 0) return JSON.parse(last.trim().split('\n').at(-1)!) as { path: string };
    }
    return assert.fail(`p2pd connect --relay failed 3 times:\n${last}`);
  }

  test('p2pd connect --relay connects over the relay (relay to relay on the private address)', async () => {
    assert.equal((await connectRelay()).path, 'relay');
  });

  test('a relay to any other port of that address gets 403: the STUN port, a socket of its own; relay to relay works', async () => {
    const probe = node(['test/helpers/relayProbe.ts', http, ns.nsIp, 'cam-1']);
    const out = jsonLines(probe);
    const r = await out.next((e) => 'relayA' in e, 60_000);
    const relayA = r.relayA as TransportAddress;
    assert.equal(relayA.address, ns.nsIp, 'the relay address is the private one');
    assert.equal(r.permissionToHostIp, 'ok', 'a permission is per IP: the relay address');
    assert.equal(r.channelBindStunPort, 403);
    assert.equal(r.channelBindOwnSocket, 403);
    assert.equal(r.permissionBtoA, 'ok');
    assert.equal(r.sendToRelayB, 'send to relay B');
    assert.equal(r.channelBindRelayB, 'ok');
    assert.equal(r.channelToRelayB, 'channel to relay B');
    assert.deepEqual(r.ownSocketReceived, []);
    const dropped = await metricValue(`http://${ns.nsIp}:8080`, DROPPED);
    assert.ok(dropped >= 2, `Send indications to the STUN port and the socket counted (${dropped})`);
    // The server and its device are unaffected: another relayed connect still works.
    assert.equal((await connectRelay()).path, 'relay');
  });
});
