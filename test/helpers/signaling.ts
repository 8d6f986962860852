/**
 * Signaling test kit: a signaling node in this process (the embedded broker, or the service
 * client of an external broker) on free loopback ports, real MQTT.js clients, and an inbox to
 * wait for messages. The node is the production code (server/signalingRole.ts) with a memory store
 * and the production session creation over a cluster of this one node (helpers/sessions.ts).
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { createHs256Signer, createVerifier, type ClientRole, type TokenSigner } from '../../src/auth/token.ts';
import { loadConfig } from '../../src/config/config.ts';
import { MemorySessionStore } from '../../src/session/memoryStore.ts';
import type { SessionStore } from '../../src/session/store.ts';
import { startSignaling, type SignalingRole } from '../../src/server/signalingRole.ts';
import { appTopic, deviceTopic, presenceTopic } from '../../src/signaling/topics.ts';
import { oneNodeSessions } from './sessions.ts';

export const JWT_SECRET = 'signaling-test-secret-0123456789abcdef';

export interface SignalingNode {
  readonly role: SignalingRole;
  readonly store: SessionStore;
  readonly http: FastifyInstance;
  readonly httpUrl: string;
  /** `mqtt://127.0.0.1:port` of the embedded broker, or the external broker's client URL. */
  readonly mqttUrl: string;
  readonly wsUrl: string;
  stop(): Promise<void>;
}

export const signer: TokenSigner = createHs256Signer(JWT_SECRET);
export const silentLog = pino({ level: process.env.P2PD_TEST_LOG ?? 'silent' });

export async function token(sub: string, role: ClientRole, devices: readonly string[] = [], ttlSec = 3600): Promise<string> {
  return signer.sign({ sub, role, devices, ttlSec });
}

/**
 * Starts a signaling node. `external`: the broker URL with the service's login (`--mqtt-url`),
 * `clientUrl` what apps and devices use; `store`: share one store between nodes (as Redis would).
 */
export async function startSignalingNode(opts: { external?: { serviceUrl: string; clientUrl: string; dynsec?: boolean }; store?: SessionStore; bindHost?: string } = {}): Promise<SignalingNode> {
  const host = opts.bindHost ?? '127.0.0.1';
  const args = ['--listen', '127.0.0.1', '--http', `${host}:0`, '--mqtt', `${host}:0`, '--jwt-secret', JWT_SECRET, '--roles', 'signal'];
  if (opts.external) args.push('--mqtt-url', opts.external.serviceUrl);
  if (opts.external?.dynsec) args.push('--mqtt-dynsec');
  const config = loadConfig(args);
  const store = opts.store ?? new MemorySessionStore();
  const http = Fastify({ logger: false });
  const verifier = await createVerifier({ secret: JWT_SECRET });
  const sessions = oneNodeSessions(store, { nodeId: config.nodeId, region: config.region, port: config.port, authSecret: config.authSecret, sessionTtlSec: config.sessionTtlSec });
  const role = await startSignaling({ config, log: silentLog, http, store, verifier, createSession: (req) => sessions.create(req) });
  await http.listen({ host, port: 0 });
  const addr = http.server.address();
  const httpPort = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    role,
    store,
    http,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    mqttUrl: opts.external ? opts.external.clientUrl : `mqtt://127.0.0.1:${role.mqttPort}`,
    wsUrl: `ws://127.0.0.1:${httpPort}/mqtt`,
    async stop() {
      await role.stop();
      await http.close();
      if (!opts.store) await store.shutdown();
    },
  };
}

/** A received message, parsed. */
export interface Received {
  readonly topic: string;
  readonly body: Record<string, unknown>;
  readonly raw: string;
}

/** Collects what a client receives; `next` waits for the first message matching a predicate. */
export class Inbox {
  readonly messages: Received[] = [];
  private waiters: Array<{ pred: (m: Received) => boolean; resolve: (m: Received) => void }> = [];

  constructor(client: MqttClient) {
    client.on('message', (topic, payload) => {
      const raw = payload.toString('utf8');
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch { /* presence and other plain payloads */ }
      const m = { topic, body, raw };
      this.messages.push(m);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(m)) return true;
        w.resolve(m);
        return false;
      });
    });
  }

  next(pred: (m: Received) => boolean, timeoutMs = 3000, what = 'a message'): Promise<Received> {
    const have = this.messages.find(pred);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const waiter = { pred, resolve: (m: Received) => { clearTimeout(timer); resolve(m); } };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.messages.map((x) => x.body.type ?? x.raw))}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Waits for an `error` with this code. */
  error(code: string, timeoutMs = 3000): Promise<Received> {
    return this.next((m) => m.body.type === 'error' && (m.body.payload as { code?: string } | undefined)?.code === code, timeoutMs, `error ${code}`);
  }

  ofType(type: string): Received[] {
    return this.messages.filter((m) => m.body.type === type);
  }

  clear(): void {
    this.messages.length = 0;
  }
}

export interface Peer {
  readonly id: string;
  readonly role: ClientRole;
  readonly token: string;
  readonly client: MqttClient;
  readonly inbox: Inbox;
  /** Publishes a message with `from`, `timestamp` and a fresh msgId filled in. */
  send(to: string, msg: Record<string, unknown>, qos?: 0 | 1): Promise<string>;
  close(): Promise<void>;
}

export interface PeerOptions {
  readonly devices?: readonly string[];
  readonly token?: string;
  readonly clientId?: string;
  readonly clean?: boolean;
  /** Devices: publish retained `online` and set the `offline` will (default true). */
  readonly presence?: boolean;
  /** Subscribe to the own topic (default true). */
  readonly subscribe?: boolean;
  readonly extra?: IClientOptions;
}

/** Connects an app or device the way the SDK does: login = id + token, own topic at QoS 1, presence for devices. */
export async function connectPeer(url: string, id: string, role: ClientRole, opts: PeerOptions = {}): Promise<Peer> {
  const tok = opts.token ?? await token(id, role, opts.devices ?? []);
  const presence = role === 'device' && opts.presence !== false;
  const client = connect(url, {
    clientId: opts.clientId ?? `${id}-${randomBytes(4).toString('hex')}`,
    username: id,
    password: tok,
    clean: opts.clean ?? true,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    protocolVersion: 4,
    ...(presence ? { will: { topic: presenceTopic(id), payload: Buffer.from('offline'), qos: 1, retain: true } } : {}),
    ...opts.extra,
  });
  // Listen before CONNACK: a persistent session's queued messages follow it at once.
  const inbox = new Inbox(client);
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
  });
  if (opts.subscribe !== false) {
    const [g] = await client.subscribeAsync(role === 'app' ? appTopic(id) : deviceTopic(id), { qos: 1 });
    if (g?.qos === 128) throw new Error(`${id} could not subscribe to its own topic`);
  }
  if (presence) await client.publishAsync(presenceTopic(id), 'online', { qos: 1, retain: true });
  return {
    id,
    role,
    token: tok,
    client,
    inbox,
    async send(to, msg, qos = 1) {
      const msgId = (msg.msgId as string | undefined) ?? randomUUID();
      const body = { from: id, to, timestamp: Date.now(), ...msg, msgId };
      await client.publishAsync(role === 'app' ? deviceTopic(to) : appTopic(to), JSON.stringify(body), { qos });
      return msgId;
    },
    async close() {
      await client.endAsync(true);
    },
  };
}

/** Asks for a session over MQTT (type `session` on p2p/signal/server) and waits for the answer. */
export async function requestSession(app: Peer, deviceId: string, opts: { withToken?: boolean } = {}): Promise<{ sessionId: string } & Record<string, unknown>> {
  const msgId = randomUUID();
  const payload: Record<string, unknown> = { deviceId };
  if (opts.withToken) payload.token = app.token;
  await app.client.publishAsync('p2p/signal/server', JSON.stringify({ type: 'session', from: app.id, to: 'server', msgId, payload, timestamp: Date.now() }), { qos: 1 });
  const reply = await app.inbox.next((m) => m.body.replyTo === msgId, 5000, 'the session answer');
  if (reply.body.type !== 'session') throw new Error(`session request refused: ${reply.raw}`);
  return reply.body.payload as { sessionId: string } & Record<string, unknown>;
}

export const SDP_OFFER = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n';
export const SDP_ANSWER = SDP_OFFER.replace('o=- 1 2', 'o=- 3 4');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs a command line (mosquitto_pub, mosquitto_sub) to its end, killing it after `timeoutMs`. */
export function run(cmd: string, args: readonly string[], timeoutMs = 10_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, [...args]);
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    c.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.once('exit', (status) => { clearTimeout(timer); resolve({ status, stdout, stderr }); });
  });
}

/** The granted QoS of one subscription (128 = refused; MQTT.js rejects then, with the SUBACK). */
export async function granted(client: Peer['client'], filter: string): Promise<number | undefined> {
  try {
    const [g] = await client.subscribeAsync(filter, { qos: 1 });
    return g?.qos;
  } catch (err) {
    const packet = (err as { packet?: { granted?: number[] } }).packet;
    if (packet?.granted) return packet.granted[0];
    throw err;
  }
}

export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 3000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
