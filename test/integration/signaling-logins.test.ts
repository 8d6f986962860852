/**
 * The bound on logins in flight (docs/signaling.md "Logins in flight", src/broker/loginGate.ts):
 * a node runs at most `--mqtt-max-logins-in-flight` logins, CONNECT to CONNACK, at once; a login
 * beyond them waits its turn (at most `--mqtt-max-logins-waiting` of them, each at most
 * `--mqtt-login-wait`); a CONNECT beyond those gets CONNACK 3 at once, and its client comes back
 * after its backoff.
 *
 * - In this process, the production broker whose token checks wait while the test holds them
 *   (as behind a slow Redis): every way a login ends frees its slot or its place, a waiting login
 *   takes the first slot that frees and one that waited too long is refused, and the SDK and the
 *   scale bench's light client answer CONNACK 3 with their backoff and the next URL.
 * - A real `p2pd serve` on a real Redis that the test freezes (SIGSTOP): two logins stay in flight
 *   in their client-id lease, two wait, the fifth is refused without Redis, and once Redis answers
 *   again all five log in and nothing stays in flight or waiting.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { LiteClient } from '../../bench/lib/mqttLite.ts';
import { createVerifier, type TokenVerifier } from '../../src/auth/token.ts';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../src/broker/embedded.ts';
import { registry } from '../../src/metrics/metrics.ts';
import type { Clock } from '../../src/sdk/clock.ts';
import { SignalingUrls } from '../../src/sdk/reconnect.ts';
import { SignalingClient } from '../../src/sdk/signaling.ts';
import { MemorySessionStore } from '../../src/session/memoryStore.ts';
import { SignalingService } from '../../src/signaling/service.ts';
import { appTopic } from '../../src/signaling/topics.ts';
import { fakeClock } from '../helpers/fakeClock.ts';
import { startP2pd, type P2pdProcess } from '../helpers/p2pd.ts';
import { freePort } from '../helpers/ports.ts';
import { REDIS_MISSING, haveRedis, startRedis, type RedisServer } from '../helpers/redis.ts';
import { JWT_SECRET, silentLog, token } from '../helpers/signaling.ts';
import { metricValue } from '../helpers/stunClient.ts';
import { eventually } from '../helpers/wait.ts';
import { login, type Login } from '../helpers/mqttLogin.ts';

const SERVER_UNAVAILABLE = 3;
const BAD_USERNAME_OR_PASSWORD = 4;

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`not within ${ms} ms: ${what}`)), ms); }),
  ]);
}

/** The sum of a metric's series in this process whose labels include `labels`. */
async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  let sum = 0;
  for (const v of (m?.values ?? []) as Array<{ value: number; labels: Record<string, string | number> }>) {
    if (Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) sum += v.value;
  }
  return sum;
}
const refusedInFlight = (): Promise<number> => metric('mqtt_connections_refused_total', { reason: 'logins_in_flight' });

/** The real verifier, whose answers wait while the test holds them: a login stays in flight, as behind a slow Redis. */
class HeldVerifier implements TokenVerifier {
  private readonly real: TokenVerifier;
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;

  constructor(real: TokenVerifier) {
    this.real = real;
  }

  hold(): void {
    this.gate ??= new Promise<void>((resolve) => { this.open = resolve; });
  }

  release(): void {
    this.open?.();
    this.gate = undefined;
  }

  async verify(tok: string): ReturnType<TokenVerifier['verify']> {
    await this.gate;
    return this.real.verify(tok);
  }

  verifyAny(tok: string): ReturnType<TokenVerifier['verifyAny']> {
    return this.real.verifyAny(tok);
  }
}

interface Node {
  readonly broker: EmbeddedBroker;
  readonly verifier: HeldVerifier;
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * A broker in this process. Its login timeout is far beyond every wait here unless a test sets
 * one, so only the path under test can free a slot in time.
 */
async function startNode(opts: { maxLoginsInFlight?: number; maxLoginsWaiting?: number; loginWaitMs?: number; loginTimeoutMs?: number } = {}): Promise<Node> {
  const verifier = new HeldVerifier(await createVerifier({ secret: JWT_SECRET }));
  const service = new SignalingService({ store: new MemorySessionStore(), verifier, log: silentLog, createSession: () => Promise.reject(new Error('no sessions here')) });
  const broker = await startEmbeddedBroker({ verifier, gate: service, log: silentLog, tcp: { host: '127.0.0.1', port: 0 }, loginTimeoutMs: 600_000, ...opts });
  service.setPublisher(broker);
  return {
    broker, verifier, url: `mqtt://127.0.0.1:${broker.tcpPort}`,
    async stop() {
      verifier.release();
      await broker.close();
      await service.stop();
    },
  };
}

describe('logins in flight at one broker', { timeout: 120_000 }, () => {
  const nodes: Node[] = [];
  const logins: Login[] = [];
  const sdkClients: SignalingClient[] = [];
  const lites: LiteClient[] = [];
  const started = async (opts: Parameters<typeof startNode>[0]): Promise<Node> => {
    const n = await startNode(opts);
    nodes.push(n);
    return n;
  };
  const opened = (url: string, id: string, password: string): Login => {
    const l = login(url, id, password);
    logins.push(l);
    return l;
  };
  afterEach(async () => {
    for (const c of sdkClients.splice(0)) c.destroy();
    for (const c of lites.splice(0)) c.close();
    for (const l of logins.splice(0)) l.end();
    await Promise.allSettled(nodes.splice(0).map((n) => n.stop()));
  });

  test('with no room to wait, a CONNECT beyond the logins in flight gets CONNACK 3 at once; a login, a refusal and a close mid-login each free their slot', async () => {
    const node = await started({ maxLoginsInFlight: 2, maxLoginsWaiting: 0 });
    const refused = await refusedInFlight();
    node.verifier.hold();
    const tok = await token('app_l1', 'app');
    const first = opened(node.url, 'app_l1', tok);
    const second = opened(node.url, 'app_l1', tok);
    await eventually('two logins in flight', () => node.broker.loginsInFlight === 2);
    assert.equal(await metric('mqtt_logins_in_flight'), 2);

    const third = opened(node.url, 'app_l1', tok);
    assert.equal(await third.answer(), SERVER_UNAVAILABLE, 'refused while the token checks are held: nothing waited for them');
    assert.equal(await refusedInFlight(), refused + 1);
    assert.ok(first.waiting && second.waiting, 'the two in flight are not answered yet');

    // Closed by its client mid-login: its slot is free, though its token check is still held.
    first.end();
    await eventually('the closed login freed its slot', () => node.broker.loginsInFlight === 1);
    node.verifier.release();
    assert.equal(await second.answer(), 0, 'the held login goes through');
    await eventually('its slot freed once its login is done', () => node.broker.loginsInFlight === 0);

    // A refused token frees its slot at the refusal.
    const stranger = opened(node.url, 'app_l1', 'not-a-token');
    assert.equal(await stranger.answer(), BAD_USERNAME_OR_PASSWORD);
    // The refused one, retrying, logs in.
    assert.equal(await third.retry(), 0);
    await eventually('nothing in flight', () => node.broker.loginsInFlight === 0);
    assert.equal(await metric('mqtt_logins_in_flight'), 0);
    assert.equal(await refusedInFlight(), refused + 1, 'only the one beyond the bound was refused');
  });

  test('a login left unanswered is closed at the login timeout, and its slot is free again', async () => {
    const node = await started({ maxLoginsInFlight: 1, loginTimeoutMs: 500 });
    const timedOut = await metric('mqtt_connections_refused_total', { reason: 'login_timeout' });
    node.verifier.hold();
    const tok = await token('app_l2', 'app');
    const stuck = opened(node.url, 'app_l2', tok);
    await within(new Promise<void>((resolve) => stuck.client.once('close', () => resolve())), 20_000, 'the node closing the unanswered login');
    assert.equal(stuck.connacks.length, 0, 'closed without a CONNACK');
    assert.equal(node.broker.loginsInFlight, 0);
    assert.equal(await metric('mqtt_connections_refused_total', { reason: 'login_timeout' }), timedOut + 1);
    node.verifier.release();
    assert.equal(await opened(node.url, 'app_l2', tok).answer(), 0, 'the slot is free');
    await eventually('nothing in flight', () => node.broker.loginsInFlight === 0);
  });

  // (30: one source holds at most 32 connections before login, --mqtt-preauth-per-source.)
  test('0 is unbounded: 30 logins in flight at once, none refused', async () => {
    const node = await started({ maxLoginsInFlight: 0 });
    const refused = await refusedInFlight();
    node.verifier.hold();
    const tok = await token('app_l3', 'app');
    const all = Array.from({ length: 30 }, () => opened(node.url, 'app_l3', tok));
    await eventually('30 logins in flight', () => node.broker.loginsInFlight === 30);
    node.verifier.release();
    assert.deepEqual(await Promise.all(all.map((l) => l.answer())), all.map(() => 0));
    assert.equal(await refusedInFlight(), refused);
    await eventually('nothing in flight', () => node.broker.loginsInFlight === 0);
  });

  test('a login beyond the slots waits and takes the first that frees; a bad token gives its place up at once; beyond the room, CONNACK 3', async () => {
    const node = await started({ maxLoginsInFlight: 1, maxLoginsWaiting: 2, loginWaitMs: 600_000 });
    const refused = await refusedInFlight();
    node.verifier.hold();
    const tok = await token('app_w1', 'app');
    const first = opened(node.url, 'app_w1', tok);
    await eventually('one login in flight', () => node.broker.loginsInFlight === 1);
    const second = opened(node.url, 'app_w1', tok);
    const third = opened(node.url, 'app_w1', tok);
    await eventually('two logins waiting', async () => await metric('mqtt_logins_waiting') === 2);
    const fourth = opened(node.url, 'app_w1', tok);
    assert.equal(await fourth.answer(), SERVER_UNAVAILABLE, 'slots and room full: refused at once');
    assert.equal(await refusedInFlight(), refused + 1);
    assert.ok(first.waiting && second.waiting && third.waiting, 'nothing answered while the token checks are held');

    node.verifier.release();
    assert.deepEqual(await Promise.all([first.answer(), second.answer(), third.answer()]), [0, 0, 0], 'the waiting logins go through as slots free');
    await eventually('nothing in flight or waiting', async () => node.broker.loginsInFlight === 0 && await metric('mqtt_logins_waiting') === 0);

    // A stranger's bad token, arriving while the room is full of waiting logins, is refused at its check, not after a wait.
    node.verifier.hold();
    const occupant = opened(node.url, 'app_w1', tok);
    await eventually('one login in flight', () => node.broker.loginsInFlight === 1);
    const waiter = opened(node.url, 'app_w1', tok);
    const stranger = opened(node.url, 'app_w1', 'not-a-token');
    await eventually('two waiting', async () => await metric('mqtt_logins_waiting') === 2);
    node.verifier.release();
    assert.equal(await stranger.answer(), BAD_USERNAME_OR_PASSWORD);
    assert.deepEqual(await Promise.all([occupant.answer(), waiter.answer()]), [0, 0]);
    await eventually('nothing in flight or waiting', async () => node.broker.loginsInFlight === 0 && await metric('mqtt_logins_waiting') === 0);
    assert.equal(await refusedInFlight(), refused + 1, 'only the one beyond the room');
  });

  test('a login that waits longer than the login wait gets CONNACK 3 (login_wait), and its place is free again', async () => {
    const node = await started({ maxLoginsInFlight: 1, maxLoginsWaiting: 1, loginWaitMs: 300 });
    const waited = await metric('mqtt_connections_refused_total', { reason: 'login_wait' });
    node.verifier.hold();
    const tok = await token('app_w2', 'app');
    const occupant = opened(node.url, 'app_w2', tok);
    await eventually('one login in flight', () => node.broker.loginsInFlight === 1);
    const t0 = Date.now();
    const turnedAway = opened(node.url, 'app_w2', tok);
    assert.equal(await turnedAway.answer(), SERVER_UNAVAILABLE, 'refused after its wait, its token check still held');
    assert.ok(Date.now() - t0 >= 300, 'not before the login wait');
    assert.equal(await metric('mqtt_connections_refused_total', { reason: 'login_wait' }), waited + 1);
    assert.equal(await metric('mqtt_logins_waiting'), 0);
    node.verifier.release();
    assert.equal(await occupant.answer(), 0);
    assert.equal(await turnedAway.retry(), 0, 'the refused one, retrying, logs in');
    await eventually('nothing in flight', () => node.broker.loginsInFlight === 0);
  });

  /** Node A with its one slot held by a login in flight (and no room to wait), and node B with room. */
  async function fullAndFree(id: string): Promise<{ a: Node; b: Node; occupant: Login; tok: string }> {
    const a = await started({ maxLoginsInFlight: 1, maxLoginsWaiting: 0 });
    const b = await started({});
    const tok = await token(id, 'app');
    a.verifier.hold();
    const occupant = opened(a.url, id, tok);
    await eventually('node A full', () => a.broker.loginsInFlight === 1);
    return { a, b, occupant, tok };
  }

  /** Fake time that also records each wait asked of it. */
  function recordingClock(): { clock: Clock; waits: number[]; advance(ms: number): Promise<void> } {
    const fake = fakeClock();
    const waits: number[] = [];
    const clock: Clock = {
      now: fake.now, mono: fake.mono, clearTimeout: fake.clearTimeout, setInterval: fake.setInterval, clearInterval: fake.clearInterval,
      setTimeout: (fn, ms) => { waits.push(ms); return fake.setTimeout(fn, ms); },
    };
    return { clock, waits, advance: (ms) => fake.advance(ms) };
  }

  test('the SDK, refused with CONNACK 3, waits its jittered backoff, then logs in at the next node of its list', async () => {
    const { a, b, tok } = await fullAndFree('app_l4');
    const { clock, waits, advance } = recordingClock();
    const refused = await refusedInFlight();
    const opening = SignalingClient.open({
      url: a.url, servers: [{ urls: [a.url] }, { urls: [b.url] }], id: 'app_l4', role: 'app', token: tok,
      clock, reconnectMs: 1000, connectTimeoutMs: 30_000,
    });
    opening.then((c) => sdkClients.push(c), () => undefined);
    await eventually('refused by node A, a wait scheduled', async () => await refusedInFlight() === refused + 1 && waits.length === 1);
    assert.ok((waits[0] as number) >= 0 && (waits[0] as number) < 1000, `the first wait is below reconnectMs: ${waits[0]}`);
    assert.equal(b.broker.clientCount, 0, 'no attempt before the wait is over');
    await advance(1000);
    const client = await opening;
    assert.equal(client.url, b.url, 'the next URL of the list');
    assert.equal(await refusedInFlight(), refused + 1, 'one attempt at the full node, no loop there');
    await eventually('on node B', () => b.broker.clientCount === 1);
  });

  test('the SDK with one URL retries it after each wait, the waits doubling, and logs in once the node has room', async () => {
    const { a, occupant, tok } = await fullAndFree('app_l5');
    const { clock, waits, advance } = recordingClock();
    const refused = await refusedInFlight();
    const opening = SignalingClient.open({ url: a.url, id: 'app_l5', role: 'app', token: tok, clock, reconnectMs: 1000, connectTimeoutMs: 30_000 });
    opening.then((c) => sdkClients.push(c), () => undefined);
    await eventually('refused once, a wait scheduled', async () => await refusedInFlight() === refused + 1 && waits.length === 1);
    assert.ok((waits[0] as number) < 1000, `first wait ${waits[0]} ms`);
    await advance(1000);
    await eventually('refused again, a second wait scheduled', async () => await refusedInFlight() === refused + 2 && waits.length === 2);
    assert.ok((waits[1] as number) < 2000, `second wait ${waits[1]} ms`);
    // The node gets room: the occupant's login goes through.
    a.verifier.release();
    assert.equal(await occupant.answer(), 0, 'the occupant logged in');
    await eventually('node A has room', () => a.broker.loginsInFlight === 0);
    await advance(2000);
    const client = await opening;
    assert.equal(client.url, a.url);
    assert.equal(await refusedInFlight(), refused + 2, 'one refusal per wait: no tight loop');
  });

  test("the scale bench's light client, refused with CONNACK 3, comes up at the next node after its backoff", async () => {
    const { a, b, tok } = await fullAndFree('app_l6');
    const refused = await refusedInFlight();
    const urls = new SignalingUrls(a.url);
    urls.use([{ urls: [a.url] }, { urls: [b.url] }]);
    const up = new Promise<boolean>((resolve) => {
      const lite = new LiteClient({
        urls, clientId: `app_l6-${randomBytes(4).toString('hex')}`, username: 'app_l6', password: tok, clean: true, keepaliveSec: 30,
        topic: appTopic('app_l6'), onMessage: () => undefined, onUp: (again) => resolve(again), onDown: () => undefined,
      });
      lites.push(lite);
      lite.start();
    });
    // Its first wait is below 1 s (bench/lib/mqttLite.ts: the SDK's Backoff, base 1 s).
    assert.equal(await within(up, 20_000, 'the light client up'), false, 'its first time up');
    assert.equal(lites[0]?.url, b.url);
    assert.equal(await refusedInFlight(), refused + 1, 'one attempt at the full node');
  });
});

describe('logins in flight at a p2pd serve whose Redis stops answering', { skip: haveRedis() ? false : REDIS_MISSING, timeout: 180_000 }, () => {
  let redis: RedisServer;
  let p2pd: P2pdProcess;
  let url: string;
  const logins: Login[] = [];

  before(async () => {
    redis = await startRedis();
    const mqttPort = await freePort();
    p2pd = await startP2pd({ args: ['--mqtt', `127.0.0.1:${mqttPort}`, '--jwt-secret', JWT_SECRET, '--roles', 'signal,api', '--redis-url', redis.url, '--mqtt-max-logins-in-flight', '2', '--mqtt-max-logins-waiting', '2', '--mqtt-login-wait', '60'] });
    url = `mqtt://127.0.0.1:${mqttPort}`;
  });
  after(async () => {
    redis?.resume();
    for (const l of logins) l.end();
    await p2pd?.stop();
    await redis?.stop();
  });

  const scrape = (series: string): Promise<number> => metricValue(p2pd.httpUrl, series);

  test('two logins wait in their client-id lease, two for a slot; the fifth gets CONNACK 3 without Redis; once it answers all five log in and none stays in flight or waiting', async (t) => {
    const tok = await token('app_r1', 'app');
    const refusedBefore = await scrape('mqtt_connections_refused_total{reason="logins_in_flight"}');
    assert.equal(await scrape('mqtt_logins_in_flight '), 0);
    let refused: Login[] = [];
    let inFlight: Login[] = [];
    const frozenAt = Date.now();
    redis.pause();
    try {
      // Sent together: whichever two arrive first take the slots and wait for Redis, the next two for them.
      logins.push(...Array.from({ length: 5 }, () => login(url, 'app_r1', tok)));
      await eventually('one CONNACK', () => logins.filter((l) => !l.waiting).length >= 1, 30_000);
      // (No scrape while Redis is frozen: /metrics reads it. With 2 slots and no room to wait, three would be refused.)
      refused = logins.filter((l) => !l.waiting);
      inFlight = logins.filter((l) => l.waiting);
      assert.deepEqual(refused.map((l) => l.connacks), [[SERVER_UNAVAILABLE]], 'the one beyond the slots and the room');
      assert.equal(inFlight.length, 4, 'four logins unanswered: two in their lease, which waits for Redis, two for a slot');
    } finally {
      redis.resume();
    }
    const refusedMs = Date.now() - frozenAt;

    // Redis answers: the two in flight log in. (Should a lease command have waited out the
    // fabric's 2 s timeout on a loaded machine, that login was refused with CONNACK 3 and retries.)
    for (const l of inFlight) {
      let code = await l.answer(30_000);
      for (let tries = 0; code !== 0 && tries < 5; tries++) code = await l.retry();
      assert.equal(code, 0, 'the login that was in flight logged in');
    }
    await eventually('no login in flight or waiting', async () => await scrape('mqtt_logins_in_flight ') === 0 && await scrape('mqtt_logins_waiting ') === 0, 20_000);
    // The refused one retries, and logs in.
    for (const l of refused) assert.equal(await l.retry(), 0);
    assert.equal(await scrape('mqtt_connections_refused_total{reason="logins_in_flight"}'), refusedBefore + 1, 'exactly the one beyond the slots and the room');
    await eventually('no login in flight', async () => await scrape('mqtt_logins_in_flight ') === 0, 20_000);
    assert.ok(logins.every((l) => l.client.connected), 'all five logged in');
    t.diagnostic(`1 of 5 refused within ${refusedMs} ms of Redis freezing`);
  });
});
