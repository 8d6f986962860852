/**
 * One load process of `bench/scale.ts`: holds a share of the app/device pairs as light MQTT
 * connections (mqttLite.ts) with keepalives, the device of pair i on node i mod N and its app on
 * node i+1 mod N (always different nodes). Driven over IPC by the parent: connect (more pairs,
 * the ramp), sessions (over MQTT, for the pairs that will signal), offers (paced; the device
 * answers at once; offer→answer round trips; which offers were acknowledged and which arrived),
 * mark/status (who went down after a node was killed and how long until back), close.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createHs256Signer } from '../../src/auth/token.ts';
import { rendezvousOrder } from '../../src/cluster/placement.ts';
import { SignalingUrls } from '../../src/sdk/reconnect.ts';
import { LiteClient } from './mqttLite.ts';

interface Pair {
  readonly i: number;
  readonly appId: string;
  readonly deviceId: string;
  app: LiteClient;
  device: LiteClient;
  sessionId: string;
}

const SDP = `v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n${'a=x-bench:padding\r\n'.repeat(40)}`;
const pairs: Pair[] = [];
const withSession: Pair[] = [];
const pendingOffers = new Map<string, number>();
const rtts: number[] = [];
/** The first leg of each round trip: offer sent → offer at the device (through its persistent session). */
const offerLegs: number[] = [];
const acked = new Set<string>();
const arrived = new Set<string>();
let sent = 0;
const sessionWaiters = new Map<string, (m: { type: string; sessionId: string; payload?: { code?: string } }) => void>();
/** Kill time (unix ms) and, per client that went down after it, when it went down and came back. */
let markAt = 0;
const wentDown = new Map<LiteClient, number>();
const cameBack: number[] = [];
const all = new Set<LiteClient>();

const send = (m: unknown): void => { process.send?.(m); };
/** How late this process runs its callbacks: a round trip measured here includes it. */
const LOOP_RESOLUTION_MS = 10;
const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
loopDelay.enable();
/** The delay past the sampling timer's own interval. */
const lateMs = (q: number): number => Math.max(0, loopDelay.percentile(q) / 1e6 - LOOP_RESOLUTION_MS);

function client(urls: SignalingUrls, id: string, token: string, device: boolean, onMessage: (topic: string, payload: Buffer) => void, keepaliveSec: number, onUp: () => void): LiteClient {
  const c: LiteClient = new LiteClient({
    urls, clientId: `${id}-c`, username: id, password: token, clean: !device, keepaliveSec,
    topic: device ? `p2p/signal/device/${id}` : `p2p/signal/app/${id}`,
    ...(device ? { will: { topic: `p2p/presence/device/${id}`, payload: 'offline' }, announce: { topic: `p2p/presence/device/${id}`, payload: 'online' } } : {}),
    onMessage,
    onUp: (reconnect) => {
      if (reconnect && wentDown.has(c)) {
        cameBack.push(Date.now() - markAt);
        wentDown.delete(c);
      }
      onUp();
    },
    onDown: () => { if (markAt > 0) wentDown.set(c, Date.now()); },
  });
  all.add(c);
  return c;
}

/**
 * This client's nodes: the one the bench puts it on first, then the others in the rendezvous
 * order of its id, as the service's list gives them (src/cluster/signalingServers.ts; keyed here
 * by URL where the service keys by node id, the same spread), so the
 * clients of a dead node spread over the rest as real clients do.
 */
function urlsFor(nodes: readonly string[], first: number, id: string): SignalingUrls {
  const own = nodes[first % nodes.length] as string;
  const urls = new SignalingUrls(own);
  const rest = rendezvousOrder(id, nodes.filter((u) => u !== own).map((u) => ({ id: u })));
  urls.use([own, ...rest.map((n) => n.id)].map((u) => ({ urls: [u] })));
  return urls;
}

async function connectPairs(c: { nodes: string[]; secret: string; first: number; count: number; keepaliveSec: number; parallel: number }): Promise<{ up: number; failed: number }> {
  const signer = createHs256Signer(c.secret);
  let next = 0;
  let failed = 0;
  const lane = async (): Promise<void> => {
    while (next < c.count) {
      const i = c.first + next++;
      const appId = `sa${i}`;
      const deviceId = `sd${i}`;
      const [devTok, appTok] = await Promise.all([
        signer.sign({ sub: deviceId, role: 'device', ttlSec: 7200 }),
        signer.sign({ sub: appId, role: 'app', devices: [deviceId], ttlSec: 7200 }),
      ]);
      const pair = { i, appId, deviceId, sessionId: '' } as Pair;
      const ok = await new Promise<boolean>((resolve) => {
        let ups = 0;
        const timer = setTimeout(() => resolve(false), 60_000);
        const oneUp = (): void => { if (++ups === 2) { clearTimeout(timer); resolve(true); } };
        let devUp = false;
        pair.device = client(urlsFor(c.nodes, i, deviceId), deviceId, devTok, true, (_topic, payload) => {
          const m = JSON.parse(payload.toString()) as { type: string; sessionId: string; from: string; msgId: string };
          if (m.type !== 'offer') return;
          arrived.add(m.msgId);
          const sentAt = pendingOffers.get(m.msgId);
          if (sentAt !== undefined) offerLegs.push(performance.now() - sentAt);
          pair.device.publish(`p2p/signal/app/${m.from}`, JSON.stringify({
            type: 'answer', sessionId: m.sessionId, from: deviceId, to: m.from, msgId: `a-${m.msgId}`, replyTo: m.msgId,
            payload: { type: 'answer', sdp: SDP }, timestamp: Date.now(),
          }), 1);
        }, c.keepaliveSec, () => {
          if (devUp) return;
          devUp = true;
          oneUp();
          // The app once its device is online (a session needs the device's presence).
          pair.app.start();
        });
        pair.app = client(urlsFor(c.nodes, i + 1, appId), appId, appTok, false, (_topic, payload) => {
          const m = JSON.parse(payload.toString()) as { type: string; sessionId: string; replyTo?: string; payload?: { code?: string } };
          if (m.type === 'answer' && m.replyTo !== undefined) {
            const at = pendingOffers.get(m.replyTo);
            if (at !== undefined) {
              pendingOffers.delete(m.replyTo);
              rtts.push(performance.now() - at);
            }
          } else if (m.replyTo !== undefined) {
            sessionWaiters.get(m.replyTo)?.(m);
            sessionWaiters.delete(m.replyTo);
          }
        }, c.keepaliveSec, () => { if (ups < 2) oneUp(); });
        pair.device.start();
      });
      if (ok) pairs.push(pair);
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: c.parallel }, lane));
  return { up: pairs.length, failed };
}

async function openSessions(count: number): Promise<{ ok: number; failed: number; ids: string[] }> {
  let failed = 0;
  const todo = pairs.slice(withSession.length, withSession.length + Math.max(0, count - withSession.length));
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < todo.length) {
      const p = todo[next++] as Pair;
      let done = false;
      for (let attempt = 0; attempt < 5 && !done; attempt++) {
        const reqId = `s-${p.appId}-${attempt}`;
        const answer = new Promise<{ type: string; sessionId: string; payload?: { code?: string } } | undefined>((resolve) => {
          sessionWaiters.set(reqId, resolve);
          setTimeout(() => { sessionWaiters.delete(reqId); resolve(undefined); }, 10_000);
        });
        p.app.publish('p2p/signal/server', JSON.stringify({ type: 'session', from: p.appId, to: 'server', msgId: reqId, timestamp: Date.now(), payload: { deviceId: p.deviceId } }), 1);
        const m = await answer;
        if (m?.type === 'session') {
          p.sessionId = m.sessionId;
          withSession.push(p);
          done = true;
        } else {
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      if (!done) failed++;
    }
  };
  await Promise.all(Array.from({ length: 20 }, lane));
  return { ok: withSession.length, failed, ids: withSession.map((p) => p.sessionId) };
}

async function runOffers(c: { ratePerSec: number; durationSec: number }): Promise<void> {
  rtts.length = 0;
  offerLegs.length = 0;
  loopDelay.reset();
  const tickMs = 10;
  const perTick = c.ratePerSec * tickMs / 1000;
  const endAt = Date.now() + c.durationSec * 1000;
  let budget = 0;
  let k = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      budget += perTick;
      while (budget >= 1 && withSession.length > 0) {
        budget--;
        const p = withSession[k++ % withSession.length] as Pair;
        if (!p.app.up) continue;
        const msgId = `o-${p.appId}-${k}`;
        pendingOffers.set(msgId, performance.now());
        sent++;
        p.app.publish(`p2p/signal/device/${p.deviceId}`, JSON.stringify({
          type: 'offer', sessionId: p.sessionId, from: p.appId, to: p.deviceId, msgId,
          payload: { type: 'offer', sdp: SDP }, timestamp: Date.now(),
        }), 1, false, (ok) => { if (ok) acked.add(msgId); });
      }
      if (Date.now() >= endAt) {
        clearInterval(timer);
        resolve();
      }
    }, tickMs);
  });
  const until = Date.now() + 5000;
  while (pendingOffers.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
}

// Keepalives: one sweep a second over every connection.
setInterval(() => {
  const now = Date.now();
  for (const c of all) c.keepalive(now);
}, 1000).unref();

process.on('message', (raw) => {
  const c = raw as { cmd: string } & Record<string, unknown>;
  const fail = (err: unknown): void => send({ ev: 'failed', error: String(err) });
  switch (c.cmd) {
    case 'connect':
      connectPairs(c as never).then((r) => send({ ev: 'connected', ...r }), fail);
      return;
    case 'sessions':
      openSessions(c.count as number).then((r) => send({ ev: 'sessions', ...r }), fail);
      return;
    case 'offers':
      runOffers(c as never).then(() => send({ ev: 'offers', rtts, offerLegs, loopP50Ms: lateMs(50), loopP99Ms: lateMs(99), sent, unanswered: pendingOffers.size }), fail);
      return;
    case 'mark':
      markAt = Date.now();
      wentDown.clear();
      cameBack.length = 0;
      send({ ev: 'marked' });
      return;
    case 'status': {
      let up = 0;
      for (const x of all) if (x.up) up++;
      const lostAcked = [...acked].filter((id) => !arrived.has(id)).length;
      send({ ev: 'status', up, total: all.size, down: wentDown.size, cameBack, acked: acked.size, lostAcked });
      return;
    }
    default:
      for (const x of all) x.close();
      send({ ev: 'closed' });
      setTimeout(() => process.exit(0), 100).unref();
  }
});
send({ ev: 'up' });
