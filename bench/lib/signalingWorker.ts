/**
 * One client process of `bench/signaling.ts`: connects a share of the app/device pairs (real
 * MQTT.js clients, the SDK's login and topics), has each app open a session over MQTT, then sends
 * paced offers that the devices answer at once, and reports offer→answer round trips.
 * Driven over IPC by the parent: connect → run → close.
 */
import { randomBytes } from 'node:crypto';
import { connect, type MqttClient } from 'mqtt';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHs256Signer } from '../../src/auth/token.ts';
import { Backoff } from '../../src/sdk/reconnect.ts';

interface ConnectCmd {
  readonly cmd: 'connect';
  readonly url: string;
  readonly secret: string;
  readonly first: number;
  readonly count: number;
  /** POST {provisionUrl} with each token first (Mosquitto with dynamic security). */
  readonly provisionUrl?: string;
  /** A session request must carry the token (external broker). */
  readonly tokenInRequest: boolean;
  readonly parallel: number;
}
interface RunCmd { readonly cmd: 'run'; readonly rounds: number; readonly ratePerSec: number }
type Cmd = ConnectCmd | RunCmd | { readonly cmd: 'close' };

interface Pair {
  readonly app: MqttClient;
  readonly device: MqttClient;
  readonly appId: string;
  readonly deviceId: string;
  sessionId: string;
}

const SDP = `v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n${'a=x-bench:padding\r\n'.repeat(40)}`;
const pairs: Pair[] = [];
const pendingOffers = new Map<string, number>();
const rtts: number[] = [];
let errors = 0;
/** Logins turned away with CONNACK 3 and tried again. */
let loginRetries = 0;
let sessionWaiters = new Map<string, (sessionId: string | undefined) => void>();

function send(msg: unknown): void {
  process.send?.(msg);
}

/** CONNACK 3 (server unavailable): the broker is at --mqtt-max-logins-in-flight; come back later. */
const SERVER_UNAVAILABLE = 3;
/** Tries at a login the broker turned away for being busy, as a client does (src/sdk/reconnect.ts). */
const LOGIN_TRIES = 30;

/** A login; one turned away with CONNACK 3 is tried again after a full-jitter backoff, as the SDK does. */
async function open(url: string, id: string, password: string, device: boolean): Promise<MqttClient> {
  const backoff = new Backoff({ baseMs: 200, maxMs: 5000 });
  for (let attempt = 1; ; attempt++) {
    try {
      return await openOnce(url, id, password, device);
    } catch (err) {
      if ((err as { code?: number }).code !== SERVER_UNAVAILABLE || attempt === LOGIN_TRIES) throw err;
      loginRetries++;
      await sleep(backoff.next());
    }
  }
}

function openOnce(url: string, id: string, password: string, device: boolean): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = connect(url, {
      clientId: `${id}-${randomBytes(3).toString('hex')}`,
      username: id,
      password,
      reconnectPeriod: 0,
      keepalive: 300,
      connectTimeout: 60_000,
      protocolVersion: 4,
      ...(device ? { will: { topic: `p2p/presence/device/${id}`, payload: Buffer.from('offline'), qos: 1, retain: true } } : {}),
    });
    // MQTT.js leaves Nagle on; an SDK for latency sets TCP_NODELAY (docs/signaling.md).
    (client.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
    client.once('connect', () => resolve(client));
    client.once('error', (err) => { client.end(true); reject(err); });
  });
}

async function inBatches<T>(items: readonly T[], parallel: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(parallel, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  });
  await Promise.all(lanes);
}

async function connectPairs(c: ConnectCmd): Promise<void> {
  const signer = createHs256Signer(c.secret);
  const indexes = Array.from({ length: c.count }, (_, i) => c.first + i);
  await inBatches(indexes, c.parallel, async (i) => {
    const appId = `app_b${i}`;
    const deviceId = `device_b${i}`;
    const devTok = await signer.sign({ sub: deviceId, role: 'device', ttlSec: 7200 });
    const appTok = await signer.sign({ sub: appId, role: 'app', devices: [deviceId], ttlSec: 7200 });
    if (c.provisionUrl) {
      for (const tok of [devTok, appTok]) {
        const r = await fetch(c.provisionUrl, { method: 'POST', headers: { authorization: `Bearer ${tok}` } });
        if (!r.ok) throw new Error(`provisioning failed: ${r.status}`);
      }
    }
    const device = await open(c.url, deviceId, devTok, true);
    await device.subscribeAsync(`p2p/signal/device/${deviceId}`, { qos: 1 });
    await device.publishAsync(`p2p/presence/device/${deviceId}`, 'online', { qos: 1, retain: true });
    device.on('message', (_topic, payload) => {
      const m = JSON.parse(payload.toString()) as { type: string; sessionId: string; from: string; msgId: string };
      if (m.type !== 'offer') return;
      device.publish(`p2p/signal/app/${m.from}`, JSON.stringify({
        type: 'answer', sessionId: m.sessionId, from: deviceId, to: m.from, msgId: `a-${m.msgId}`, replyTo: m.msgId,
        payload: { type: 'answer', sdp: SDP }, timestamp: Date.now(),
      }), { qos: 1 });
    });
    const app = await open(c.url, appId, appTok, false);
    await app.subscribeAsync(`p2p/signal/app/${appId}`, { qos: 1 });
    app.on('message', (_topic, payload) => {
      const m = JSON.parse(payload.toString()) as { type: string; sessionId: string; replyTo?: string; payload: { code?: string } };
      if (m.type === 'answer' && m.replyTo !== undefined) {
        const sentAt = pendingOffers.get(m.replyTo);
        if (sentAt !== undefined) {
          pendingOffers.delete(m.replyTo);
          rtts.push(performance.now() - sentAt);
        }
      } else if (m.replyTo !== undefined && sessionWaiters.has(m.replyTo)) {
        sessionWaiters.get(m.replyTo)?.(m.type === 'session' ? m.sessionId : undefined);
        sessionWaiters.delete(m.replyTo);
      } else if (m.type === 'error') {
        errors++;
      }
    });
    const pair: Pair = { app, device, appId, deviceId, sessionId: '' };
    const reqId = `s-${appId}`;
    const answered = new Promise<string | undefined>((resolve) => sessionWaiters.set(reqId, resolve));
    app.publish('p2p/signal/server', JSON.stringify({
      type: 'session', from: appId, to: 'server', msgId: reqId, timestamp: Date.now(),
      payload: c.tokenInRequest ? { deviceId, token: appTok } : { deviceId },
    }), { qos: 1 });
    const sessionId = await answered;
    if (sessionId === undefined) throw new Error(`session for ${appId} refused`);
    pair.sessionId = sessionId;
    pairs.push(pair);
  });
}

async function runOffers(c: RunCmd): Promise<void> {
  const queue: Array<{ pair: Pair; round: number }> = [];
  for (let r = 0; r < c.rounds; r++) for (const pair of pairs) queue.push({ pair, round: r });
  const tickMs = 10;
  const perTick = Math.max(1, c.ratePerSec * tickMs / 1000);
  let budget = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      budget += perTick;
      while (budget >= 1 && queue.length > 0) {
        budget--;
        const { pair, round } = queue.shift() as { pair: Pair; round: number };
        const msgId = `o-${pair.appId}-${round}`;
        pendingOffers.set(msgId, performance.now());
        pair.app.publish(`p2p/signal/device/${pair.deviceId}`, JSON.stringify({
          type: 'offer', sessionId: pair.sessionId, from: pair.appId, to: pair.deviceId, msgId,
          payload: { type: 'offer', sdp: SDP }, timestamp: Date.now(),
        }), { qos: 1 });
      }
      if (queue.length === 0) {
        clearInterval(timer);
        resolve();
      }
    }, tickMs);
  });
  const until = Date.now() + 10_000;
  while (pendingOffers.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
}

process.on('message', (raw) => {
  const c = raw as Cmd;
  if (c.cmd === 'connect') {
    connectPairs(c).then(() => send({ ev: 'connected', pairs: pairs.length, loginRetries }), (err: unknown) => send({ ev: 'failed', error: String(err) }));
  } else if (c.cmd === 'run') {
    runOffers(c).then(() => send({ ev: 'done', rtts, lost: pendingOffers.size, errors }), (err: unknown) => send({ ev: 'failed', error: String(err) }));
  } else {
    for (const p of pairs) {
      p.app.end(true);
      p.device.end(true);
    }
    sessionWaiters = new Map();
    send({ ev: 'closed' });
    setTimeout(() => process.exit(0), 100).unref();
  }
});
send({ ev: 'up' });
