/**
 * A move that the draining node does not let finish (docs/signaling.md "Draining"): the SDK
 * leaves with a clean DISCONNECT once the node acknowledged its QoS 1 messages, but a node that
 * dies first, or never acknowledges, must not leave the client moving forever. Two aedes brokers
 * on loopback: A tells the client to move and withholds its PUBACKs; B is where it must land,
 * with the message A never acknowledged.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';
import { SignalingClient } from '../../src/sdk/node.ts';
import { eventually } from '../helpers/wait.ts';

interface Broker {
  readonly url: string;
  /** Payloads of the PUBLISHes clients sent, by topic. */
  readonly received: { topic: string; body: string }[];
  notify(topic: string, body: unknown): void;
  /** PUBLISHes from clients that it holds without a PUBACK. */
  heldPublishes(): number;
  /** Drops every connection and stops listening, as a SIGKILLed node does. */
  kill(): void;
}

const running: Broker[] = [];
const clients: SignalingClient[] = [];

async function startBroker(opts: { ackPublishes: boolean }): Promise<Broker> {
  let held = 0;
  const aedes = await Aedes.createBroker({
    // Never calling back keeps the PUBLISH unacknowledged (no PUBACK) and undelivered.
    authorizePublish: (_client, _packet, done) => { if (opts.ackPublishes) done(null); else held++; },
  });
  const received: { topic: string; body: string }[] = [];
  aedes.on('publish', (packet, client) => { if (client) received.push({ topic: packet.topic, body: packet.payload.toString() }); });
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); aedes.handle(s); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const broker: Broker = {
    url: `mqtt://127.0.0.1:${port}`,
    received,
    heldPublishes: () => held,
    notify: (topic, body) => aedes.publish({ cmd: 'publish', topic, payload: Buffer.from(JSON.stringify(body)), qos: 1, retain: false, dup: false }, () => {}),
    kill: () => {
      server.close();
      for (const s of sockets) s.destroy();
      aedes.close();
    },
  };
  running.push(broker);
  return broker;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  for (const b of running.splice(0)) b.kill();
});

const APP = 'app-move-1';
const drainNotice = (to: string, next: string): unknown => ({
  type: 'error', from: 'server', to, sessionId: '', timestamp: Date.now(),
  payload: { code: 'NODE_DRAINING', message: 'node draining', signaling: [{ urls: [next] }] },
});

/** The client is on A, subscribed, with one QoS 1 message A holds unacknowledged. */
async function onAWithUnacked(a: Broker): Promise<{ client: SignalingClient; sent: Promise<string> }> {
  const client = await SignalingClient.open({ url: a.url, id: APP, role: 'app', token: 'unused', reconnectMs: 200 });
  clients.push(client);
  const sent = client.send('cam-move-1', 'candidate', 'sess-1', { candidate: 'held by A' });
  await eventually('the QoS 1 message held by A', () => a.heldPublishes() === 1);
  return { client, sent };
}

test('a node that dies before acknowledging: the client lands on the next node and the message leaves there', async () => {
  const a = await startBroker({ ackPublishes: false });
  const b = await startBroker({ ackPublishes: true });
  const { client, sent } = await onAWithUnacked(a);
  const moved = new Promise<void>((r) => client.once('moving', () => r()));
  a.notify(`p2p/signal/app/${APP}`, drainNotice(APP, b.url));
  await moved;
  a.kill();
  await eventually('the client on B', () => client.url === b.url && client.connected);
  // What A never acknowledged is sent again on B, and the send resolves with B's PUBACK.
  await sent;
  // aedes tells of a publish once it has forwarded it, which may come after its PUBACK.
  await eventually('the held message on B', () => b.received.some((m) => m.body.includes('held by A')));
  assert.equal(b.received.filter((m) => m.topic === 'p2p/signal/device/cam-move-1' && m.body.includes('held by A')).length, 1);
  // Still usable: a new message goes through B.
  await client.send('cam-move-1', 'candidate', 'sess-1', { candidate: 'after the move' });
  await eventually('the new message on B', () => b.received.some((m) => m.body.includes('after the move')));
});

test('a node that never acknowledges: the client gives up on it within the bound and moves anyway', async () => {
  const a = await startBroker({ ackPublishes: false });
  const b = await startBroker({ ackPublishes: true });
  const { client, sent } = await onAWithUnacked(a);
  const startedAt = Date.now();
  a.notify(`p2p/signal/app/${APP}`, drainNotice(APP, b.url));
  await eventually('the client on B', () => client.url === b.url && client.connected, 15_000);
  const tookMs = Date.now() - startedAt;
  await sent;
  await eventually('the held message on B', () => b.received.some((m) => m.body.includes('held by A')));
  assert.equal(b.received.filter((m) => m.body.includes('held by A')).length, 1);
  // It waited for the acknowledgement (5 s) rather than cutting the node off at once.
  assert.ok(tookMs >= 4_500, `moved after ${tookMs} ms`);
});
