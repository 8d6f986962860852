/**
 * The embedded MQTT broker (aedes) of a one-machine p2pd: MQTT over TCP on `--mqtt` and over
 * WebSocket at `/mqtt` on the HTTP server. Policy is handed in (STYLE.md): tokens are checked by
 * a TokenVerifier, topic rights come from signaling/acl.ts, and every publish passes the
 * signaling gate before aedes forwards it.
 *
 * Login (CONTRACT.md §3): username = the token's `sub`, password = the token. The client
 * identifier is free; rights follow the username only.
 */
import { createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { Aedes, type AedesPublishPacket, type AuthenticateError, type Client, type PublishPacket } from 'aedes';
import type { ClientClaims, TokenVerifier } from '../auth/token.ts';
import type { HostPort } from '../config/values.ts';
import type { Logger } from '../log.ts';
import { mqttClientsConnected } from '../metrics/metrics.ts';
import { aclRules, maySubscribe } from '../signaling/acl.ts';
import type { Sender, SignalingPublisher } from '../signaling/service.ts';
import { SERVER_ID, parseTopic } from '../signaling/topics.ts';
import { attachWebSocket } from './websocket.ts';

/** What the broker asks the signaling service. */
export interface PublishGate {
  /** Decides on one publish of an authenticated client; false drops it. Must not throw. */
  authorizePublish(sender: Sender, topic: string, payload: Buffer, retain: boolean): Promise<boolean>;
  /** A presence message published by the broker itself (a will of an already gone client). */
  observe(topic: string, payload: Buffer): Promise<void>;
  /** The device's last connection closed; its presence may still say online. */
  markOffline(deviceId: string): Promise<void>;
}

export interface EmbeddedBrokerOptions {
  readonly verifier: TokenVerifier;
  readonly gate: PublishGate;
  readonly log: Logger;
  /** TCP listener (`--mqtt`); none when undefined. */
  readonly tcp?: HostPort;
  /** HTTP server to serve MQTT over WebSocket on. */
  readonly http?: HttpServer;
  readonly wsPath?: string;
  /** Grace before a device whose connections all closed is marked offline (a quick reconnect keeps it online). */
  readonly offlineGraceMs?: number;
}

export interface EmbeddedBroker extends SignalingPublisher {
  /** The bound TCP port (useful with port 0), undefined without a TCP listener. */
  readonly tcpPort: number | undefined;
  /** Live authenticated connections of one app or device id. */
  connectionsOf(id: string): number;
  readonly aedes: Aedes;
  close(): Promise<void>;
}

/** Where refused publishes go: acknowledged (QoS 1 needs its PUBACK) but routed to no one. */
const DROP_TOPIC = '$p2pd/dropped';
const EMPTY = Buffer.alloc(0);

// CONNACK return codes of MQTT 3.1.1 §3.2.2.3.
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

function authError(message: string, returnCode: number): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

export async function startEmbeddedBroker(opts: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
  const log = opts.log.child({ role: 'broker' });
  const senders = new WeakMap<Client, Sender>();
  /** Publishes of one connection are decided in order (aedes handles a read chunk concurrently). */
  const chains = new WeakMap<Client, Promise<unknown>>();
  const connections = new Map<string, number>();
  const offlineGraceMs = opts.offlineGraceMs ?? 1000;
  const { gate, verifier } = opts;

  const aedes = await Aedes.createBroker({
    connectTimeout: 10_000,
    drainTimeout: 30_000,
    concurrency: 1000,
    heartbeatInterval: 60_000,

    authenticate(client, username, password, done) {
      if (username === undefined || password === undefined) {
        done(authError('username (your id) and password (your token) are required', BAD_USERNAME_OR_PASSWORD), null);
        return;
      }
      verifier.verify(password.toString('utf8')).then((claims: ClientClaims) => {
        if (claims.sub !== username || claims.sub === SERVER_ID) {
          done(authError('username must be the token\'s subject', NOT_AUTHORIZED), null);
          return;
        }
        senders.set(client, { id: claims.sub, role: claims.role, claims, rules: aclRules(claims) });
        done(null, true);
      }, (err: unknown) => {
        log.debug({ err, username }, 'MQTT login refused');
        done(authError((err as Error).message, BAD_USERNAME_OR_PASSWORD), null);
      });
    },

    authorizeSubscribe(client, sub, done) {
      const sender = senders.get(client);
      if (!sender) return done(new Error('not authenticated'));
      if (sender.claims.exp * 1000 <= Date.now()) return done(new Error('token expired'));
      // A refused filter is negated: SUBACK 0x80 for it, the connection stays.
      done(null, maySubscribe(sender.rules, sub.topic) ? sub : null);
    },

    authorizePublish(client, packet, done) {
      if (client === null) {
        // A will published after its client is gone: only a device's `offline` is expected.
        if (parseTopic(packet.topic)?.kind !== 'presence') return done(new Error('unexpected broker publish'));
        gate.observe(packet.topic, toBuffer(packet.payload)).then(() => done(null), done);
        return;
      }
      const sender = senders.get(client);
      if (!sender) return done(new Error('not authenticated'));
      // MQTT 3.1.1 cannot refuse one publish; closing the connection is aedes' only error path.
      if (sender.claims.exp * 1000 <= Date.now()) return done(new Error('token expired'));
      const decide = (): Promise<boolean> => gate.authorizePublish(sender, packet.topic, toBuffer(packet.payload), packet.retain);
      const previous = chains.get(client);
      const decision = previous === undefined ? decide() : previous.then(decide);
      chains.set(client, decision.catch(() => false));
      decision.then((ok) => {
        if (!ok) divert(packet);
        done(null);
      }, (err: unknown) => {
        log.error({ err, client: sender.id }, 'publish gate failed');
        divert(packet);
        done(null);
      });
    },

    authorizeForward(_client, packet: AedesPublishPacket) {
      return packet;
    },
  });

  const pendingOffline = new Map<string, NodeJS.Timeout>();
  aedes.on('client', (client) => {
    const sender = senders.get(client);
    if (!sender) return;
    connections.set(sender.id, (connections.get(sender.id) ?? 0) + 1);
    const t = pendingOffline.get(sender.id);
    if (t) {
      clearTimeout(t);
      pendingOffline.delete(sender.id);
    }
  });
  aedes.on('clientDisconnect', (client) => {
    const sender = senders.get(client);
    if (!sender) return;
    const left = (connections.get(sender.id) ?? 1) - 1;
    if (left > 0) {
      connections.set(sender.id, left);
      return;
    }
    connections.delete(sender.id);
    if (sender.role !== 'device' || aedes.closed) return;
    // A device that disconnected cleanly sends no will; its retained `online` would lie.
    const timer = setTimeout(() => {
      pendingOffline.delete(sender.id);
      if (!connections.has(sender.id)) gate.markOffline(sender.id).catch((err: unknown) => log.warn({ err }, 'could not mark a device offline'));
    }, offlineGraceMs);
    timer.unref();
    pendingOffline.set(sender.id, timer);
  });
  aedes.on('clientError', (client, err) => log.debug({ err: err.message, client: client.id }, 'MQTT client error'));
  aedes.on('connectionError', (_client, err) => log.debug({ err: err.message }, 'MQTT connection error'));

  let tcpServer: NetServer | undefined;
  let tcpPort: number | undefined;
  if (opts.tcp) {
    // MQTT packets leave in several small writes; Nagle would hold them for the peer's delayed ACK (~40 ms).
    const server = createServer({ noDelay: true }, (socket: Socket) => {
      mqttClientsConnected.inc({ transport: 'tcp' });
      socket.once('close', () => mqttClientsConnected.dec({ transport: 'tcp' }));
      aedes.handle(socket);
    });
    const { host, port } = opts.tcp;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => log.error({ err }, 'MQTT TCP listener error'));
    tcpServer = server;
    tcpPort = (server.address() as AddressInfo).port;
  }
  const detachWs = opts.http ? attachWebSocket(opts.http, aedes, { path: opts.wsPath ?? '/mqtt', log }) : undefined;
  log.info({ tcp: opts.tcp ? `${opts.tcp.host}:${tcpPort}` : undefined, ws: opts.http ? opts.wsPath ?? '/mqtt' : undefined }, 'embedded MQTT broker ready');

  return {
    aedes,
    tcpPort,
    connectionsOf: (id) => connections.get(id) ?? 0,
    publish(topic, payload, { qos, retain = false }) {
      return new Promise<void>((resolve, reject) => {
        const packet: PublishPacket = { cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain, dup: false };
        aedes.publish(packet, (err?: Error) => (err ? reject(err) : resolve()));
      });
    },
    async close() {
      for (const t of pendingOffline.values()) clearTimeout(t);
      pendingOffline.clear();
      const tcpClosed = tcpServer ? new Promise<void>((resolve) => tcpServer?.close(() => resolve())) : Promise.resolve();
      await detachWs?.();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await tcpClosed;
    },
  };
}

function divert(packet: PublishPacket): void {
  packet.topic = DROP_TOPIC;
  packet.retain = false;
  packet.payload = EMPTY;
}

function toBuffer(payload: PublishPacket['payload']): Buffer {
  return typeof payload === 'string' ? Buffer.from(payload) : Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
}
