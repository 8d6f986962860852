/**
 * Draining (docs/turn.md "Draining"), driven as an operator's rolling update does it: two TURN
 * nodes over one real redis-server, SIGTERM to the one carrying a relay. New Allocates there get
 * 300 Try Alternate naming the other node, and allocate there; the relay already open keeps
 * flowing through the grace; once it ends the process exits 0 without waiting for the rest. And
 * the evidence: a relay-only call (Node SDK both ends, test video) on the TURN node that
 * drains moves to the other node by ICE restart and keeps playing, with the Node SDK and with the
 * web viewer in Chromium.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Attr, attrValue, findAttr, readAddress, type TransportAddress } from '../../src/stun/index.ts';
import { createHs256Signer } from '../../src/auth/token.ts';
import { TestVideoSource } from '../../src/device/testVideo.ts';
import type { AppConnection } from '../../src/sdk/app.ts';
import { connect, serve } from '../../src/sdk/node.ts';
import { chromiumAvailable, launchChromium } from '../helpers/chromium.ts';
import { startP2pd, type P2pdProcess } from '../helpers/p2pd.ts';
import { TurnError, TurnTestClient, UdpPeer, startTurnServer, startTurnServers } from '../helpers/turnClient.ts';
import { haveRedis, REDIS_MISSING, startRedis, type RedisServer } from '../helpers/redis.ts';
import { eventually } from '../helpers/wait.ts';

const READY_MS = 60_000;
/** What another process learns at its next heartbeats (--heartbeat-interval 0.2) or its next signal. */
const WAIT_MS = 15_000;
const JWT = 'drain-test-secret';
const signer = createHs256Signer(JWT);

describe('drain: SIGTERM sends new allocations elsewhere and lets live relays finish', { timeout: 180_000, skip: haveRedis() ? false : REDIS_MISSING }, () => {
  let redis: RedisServer;
  const servers: P2pdProcess[] = [];
  const clients: TurnTestClient[] = [];
  const peers: UdpPeer[] = [];
  after(async () => {
    for (const c of clients) c.close();
    for (const p of peers) p.close();
    await Promise.all(servers.map((s) => s.stop()));
    await redis?.stop();
  });

  test('300 Try Alternate to the other node, the open relay flows through the grace, exit 0 once it ends', async () => {
    redis = await startRedis();
    const common = ['--roles', 'stun,turn', '--user', 'u:p', '--redis-url', redis.url, '--heartbeat-interval', '0.2',
      '--allow-peer', '127.0.0.0/8', '--external-ip', '127.0.0.1'];
    const [a, b] = await startTurnServers([
      { readyTimeoutMs: READY_MS, workers: 2, args: [...common, '--node-id', 'node-a', '--drain-grace', '60'] },
      { readyTimeoutMs: READY_MS, args: [...common, '--node-id', 'node-b'] },
    ], servers) as [P2pdProcess, P2pdProcess];
    const connect = async (port: number): Promise<TurnTestClient> => {
      const c = await TurnTestClient.connect({ port, username: 'u', password: 'p' });
      clients.push(c);
      return c;
    };
    const peer = await UdpPeer.bind();
    peers.push(peer);
    const live = await connect(a.port);
    await live.allocate({ lifetime: 600 });
    await live.createPermission(peer.address);
    const relayed = async (text: string): Promise<void> => {
      live.sendIndication(peer.address, Buffer.from(text));
      assert.equal((await peer.next(5000))?.data.toString(), text);
    };
    await relayed('before the drain');
    // Node A must know B before it can name it: both registered, A's view read at its heartbeat.
    await eventually('node A sees node B in the registry', async () => {
      const r = await fetch(`${a.httpUrl}/metrics`);
      return /cluster_nodes_healthy\{role="turn"\} 2/.test(await r.text());
    }, WAIT_MS);

    const exited = once(a.child, 'exit');
    a.child.kill('SIGTERM');
    await eventually('/readyz of the draining node is 503', async () => (await fetch(`${a.httpUrl}/readyz`)).status === 503, WAIT_MS);

    // A new client: sent to B, with B's address, and B allocates it.
    let alt: TransportAddress | undefined;
    await eventually('a new Allocate on A gets 300 Try Alternate', async () => {
      const c = await connect(a.port);
      try {
        await c.allocate();
        await c.refresh(0); // the drain had not reached this worker yet: give it back
        return false;
      } catch (e) {
        if (!(e instanceof TurnError) || e.code !== 300) throw e;
        alt = readAddress(attrValue(e.response, findAttr(e.response, Attr.AlternateServer)));
        return true;
      }
    }, WAIT_MS);
    assert.deepEqual(alt, { family: 4, address: '127.0.0.1', port: b.port }, 'ALTERNATE-SERVER is node B');
    const moved = await connect((alt as TransportAddress).port);
    assert.equal((await moved.allocate()).relayed.length, 1, 'node B allocates the redirected client');

    // The relay opened before keeps flowing, and refreshes, while the grace runs.
    await relayed('during the drain');
    assert.equal(await live.refresh(600), 600);
    assert.equal(a.child.exitCode, null, 'A waits for its live relay');

    // The last relay ends: A stops at once, well before the 60 s grace, and exits 0.
    await live.refresh(0);
    const [code] = await Promise.race([exited, sleep(20_000).then(() => ['still running'])]);
    assert.equal(code, 0);
  });
});

/** Waits until `conn` has received `want` frames in all (a hang guard, not a speed check). */
async function untilFrames(conn: AppConnection, want: number, timeoutMs = 90_000): Promise<void> {
  await eventually(`${want} video frames`, async () => (await conn.getStats()).framesReceived >= want, timeoutMs);
}

interface Cluster {
  readonly api: P2pdProcess;
  readonly turn: ReadonlyMap<string, P2pdProcess>;
  readonly token: string;
  /** The session's TURN node as the service says now. */
  turnNode(sessionId: string): Promise<string>;
  /** SIGTERM the node; resolves with its exit code (or 'still running' after 30 s). */
  drain(nodeId: string): Promise<unknown>;
}

/**
 * An API/signaling node and two TURN nodes (--drain-grace 3) over one real Redis, and a camera
 * (the SDK's device with the test video) on the API node. Everything is stopped through `stops`.
 */
async function startCluster(stops: Array<() => Promise<unknown>>, deviceId: string, appId: string): Promise<Cluster> {
  const redis = await startRedis();
  stops.push(() => redis.stop());
  const common = ['--redis-url', redis.url, '--heartbeat-interval', '0.2', '--jwt-secret', JWT, '--auth-secret', 'drain-turn',
    '--allow-peer', '127.0.0.0/8', '--external-ip', '127.0.0.1'];
  const started: P2pdProcess[] = [];
  stops.push(() => Promise.all(started.map((s) => s.stop())));
  const keep = (p: Promise<P2pdProcess>): Promise<P2pdProcess> => p.then((s) => { started.push(s); return s; });
  const [api, t1, t2] = await Promise.all([
    keep(startP2pd({ readyTimeoutMs: READY_MS, args: [...common, '--roles', 'signal,api', '--node-id', 'api'] })),
    keep(startTurnServer({ readyTimeoutMs: READY_MS, args: [...common, '--roles', 'stun,turn', '--node-id', 't1', '--drain-grace', '3'] })),
    keep(startTurnServer({ readyTimeoutMs: READY_MS, args: [...common, '--roles', 'stun,turn', '--node-id', 't2', '--drain-grace', '3'] })),
  ]) as [P2pdProcess, P2pdProcess, P2pdProcess];
  await eventually('the API node sees both TURN nodes', async () =>
    /cluster_nodes_healthy\{role="turn"\} 2/.test(await (await fetch(`${api.httpUrl}/metrics`)).text()), WAIT_MS);
  const media = new TestVideoSource({ width: 320, height: 240, fps: 15, bitrateKbps: 300 });
  await media.start();
  stops.push(() => media.stop());
  const dev = await serve({ server: api.httpUrl, token: await signer.sign({ sub: deviceId, role: 'device' }), media });
  stops.push(() => dev.close());
  const token = await signer.sign({ sub: appId, role: 'app', devices: [deviceId] });
  const turn = new Map([['t1', t1], ['t2', t2]]);
  return {
    api, turn, token,
    turnNode: async (sessionId) =>
      ((await (await fetch(`${api.httpUrl}/v1/sessions/${sessionId}`, { headers: { authorization: `Bearer ${token}` } })).json()) as { turnNode: string }).turnNode,
    drain: async (nodeId) => {
      const node = turn.get(nodeId) as P2pdProcess;
      const exited = once(node.child, 'exit');
      node.child.kill('SIGTERM');
      const [code] = await Promise.race([exited, sleep(30_000).then(() => ['still running'])]);
      return code;
    },
  };
}

interface ViewerState {
  state: string;
  path: string | undefined;
  sessionId: string | undefined;
  stats: { framesDecoded?: number; iceRestarts?: number } | undefined;
}

// No suite-wide timeout: each step has its own bound, and the runner's --test-timeout guards a hang.
describe('drain: a relayed call on the draining TURN node moves to the other by ICE restart and keeps playing', { skip: haveRedis() ? false : REDIS_MISSING }, () => {
  const stops: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  });

  test('Node SDK: SIGTERM the TURN node carrying a relay-only call; it exits 0 after its grace, the call comes back through the other node', async () => {
    const c = await startCluster(stops, 'cam-d1', 'app-d1');
    const conn = await connect({
      server: c.api.httpUrl, token: c.token, deviceId: 'cam-d1', iceTransportPolicy: 'relay',
      timeoutMs: 20_000, livenessMs: 3000, recoveryMs: 60_000,
    });
    stops.push(() => conn.close());
    assert.equal(conn.path, 'relay');
    await untilFrames(conn, 10);

    const carrying = await c.turnNode(conn.sessionId);
    const restarts = conn.iceRestarts;
    // The relay flows through the grace; then the node stops on its own, exit code 0.
    assert.equal(await c.drain(carrying), 0, `the drained node ${carrying} exits 0`);

    // The path died with the node: an ICE restart asks for the session again, gets the other
    // node's TURN, and the video goes on.
    await eventually('the call is connected again after an ICE restart', async () => conn.state === 'connected' && conn.iceRestarts > restarts, 60_000);
    const framesBack = (await conn.getStats()).framesReceived;
    await untilFrames(conn, framesBack + 30);
    assert.notEqual(await c.turnNode(conn.sessionId), carrying, `the session moved off ${carrying}`);
    assert.equal((await conn.getStats()).path, 'relay');
    assert.equal(await conn.echo('after the move'), 'after the move');
  });

  test('Chromium: the web viewer\'s relay-only call moves the same way and keeps decoding', { skip: chromiumAvailable() ? false : 'no Chromium at /usr/bin/chromium (set CHROMIUM_PATH)' }, async () => {
    const c = await startCluster(stops, 'cam-d2', 'app-d2');
    const browser = await launchChromium();
    stops.push(() => browser.close());
    const page = await browser.context.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    const read = (): Promise<ViewerState> => page.evaluate(() => {
      const v = (window as unknown as { p2pdViewer: { state: string; path?: string; stats?: ViewerState['stats']; setupPhases?: unknown } }).p2pdViewer;
      const details = document.getElementById('details')?.textContent ?? '';
      return { state: v.state, path: v.path, sessionId: /session (\S+)/.exec(details)?.[1], stats: v.stats ? { ...v.stats } : undefined };
    });
    const until = async (what: string, check: (s: ViewerState) => boolean, timeoutMs: number): Promise<ViewerState> => {
      let last: ViewerState | undefined;
      try {
        await eventually(what, async () => check(last = await read()), timeoutMs);
      } catch (err) {
        throw new Error(`${(err as Error).message}; viewer: ${JSON.stringify(last)}\nbrowser console:\n${logs.slice(-30).join('\n')}`);
      }
      return last as ViewerState;
    };
    await page.goto(`${c.api.httpUrl}/#token=${c.token}&relay=1`);
    const button = page.locator('button[data-device="cam-d2"]');
    await button.waitFor({ timeout: 15_000 });
    await button.click();
    const up = await until('connected', (s) => s.state === 'connected' && s.sessionId !== undefined, 30_000);
    assert.equal(up.path, 'relay');
    const playing = await until('decoded frames', (s) => (s.stats?.framesDecoded ?? 0) > 10, 30_000);

    const carrying = await c.turnNode(up.sessionId as string);
    assert.equal(await c.drain(carrying), 0, `the drained node ${carrying} exits 0`);
    const back = await until('connected again after an ICE restart',
      (s) => s.state === 'connected' && (s.stats?.iceRestarts ?? 0) > (playing.stats?.iceRestarts ?? 0), 60_000);
    await until('frames decoded after the move', (s) => (s.stats?.framesDecoded ?? 0) >= (back.stats?.framesDecoded ?? 0) + 30, 30_000);
    assert.notEqual(await c.turnNode(up.sessionId as string), carrying, `the session moved off ${carrying}`);
    assert.equal((await read()).path, 'relay');
  });
});
