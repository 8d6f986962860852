/**
 * The SDK's MQTT side (docs/signaling.md) with MQTT.js, over WebSocket in the browser and over
 * WebSocket or TCP in Node. Login: username = own id, password = token; a fresh client id per
 * connection. Subscribes to its own topic on every (re)connect; a device publishes its retained
 * `online` presence and leaves `offline` as its will. Reconnects by itself after a network or
 * broker loss and says so with `up`/`down` events: with exponential backoff and full jitter, to
 * the next of the signaling URLs the service lists (`useServers`, reconnect.ts), so a client
 * whose node dies moves to another node of the fabric (docs/signaling.md "Finding a node").
 *
 * The broker closes a connection when its token expires (docs/signaling.md, "Login and rights").
 * With a `tokenProvider` the client fetches a fresh token shortly before that, logs in with it on
 * the next (re)connection and resubscribes; a login refused with an expired token is retried
 * once with a fresh one. Without a provider an expired token ends in AUTH_FAILED.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { realClock, type Clock } from './clock.ts';
import { Emitter } from './emitter.ts';
import { Backoff, Reconnector, SignalingUrls } from './reconnect.ts';
import { SdkError, signalingUnavailable, timeout } from './errors.ts';
import { readTokenClaims } from './token.ts';

export type MessageType = 'offer' | 'answer' | 'candidate' | 'bye' | 'keepalive' | 'error' | 'session';

export interface SignalMessage {
  readonly type: MessageType;
  readonly sessionId: string;
  readonly from: string;
  readonly to: string;
  readonly msgId?: string;
  readonly replyTo?: string;
  readonly payload: Readonly<Record<string, unknown>>;
  readonly timestamp: number;
}

const TYPES: readonly string[] = ['offer', 'answer', 'candidate', 'bye', 'keepalive', 'error', 'session'];
/** The id of the service's own messages (docs/signaling.md). */
const SERVER = 'server';

/** An `error` NODE_DRAINING with the nodes to move to. */
function isDrainNotice(payload: unknown): payload is { code: 'NODE_DRAINING'; signaling: { urls: string[] }[] } {
  const p = payload as { code?: unknown; signaling?: unknown } | undefined;
  return typeof p === 'object' && p !== null && p.code === 'NODE_DRAINING' && Array.isArray(p.signaling);
}
const PRESENCE_PREFIX = 'p2p/presence/device/';

export const appTopic = (id: string): string => `p2p/signal/app/${id}`;
export const deviceTopic = (id: string): string => `p2p/signal/device/${id}`;
export const presenceTopic = (id: string): string => `${PRESENCE_PREFIX}${id}`;

export interface SignalingOptions {
  /** `ws://host:8080/mqtt` (the service's MQTT over WebSocket), or a broker's mqtt:// URL. */
  readonly url: string;
  readonly id: string;
  readonly role: 'app' | 'device';
  readonly token: string;
  readonly connectTimeoutMs?: number;
  /**
   * Reconnection waits (reconnect.ts): the first is uniform in [0, reconnectMs), each next one
   * in twice that, up to reconnectMaxMs (defaults 1000 ms and 30,000 ms).
   */
  readonly reconnectMs?: number;
  readonly reconnectMaxMs?: number;
  /** Timers of the reconnection waits (tests: fake time). */
  readonly clock?: Clock;
  /** Signaling nodes to move to when `url` fails (`signaling` of a session answer; useServers later). */
  readonly servers?: readonly { readonly urls: readonly string[] }[];
  /**
   * A fresh token for the same id (e.g. `() => devToken(server, {role, sub})`, or the app's own
   * backend): called before the current token expires and when a login is refused as expired.
   */
  readonly tokenProvider?: () => Promise<string>;
}

/** Fetch the next token this long before the current one expires (at most a quarter of what is left). */
const REFRESH_AHEAD_MS = 30_000;

export type SignalingEvents = {
  message: [SignalMessage];
  /** Connected and subscribed; `reconnect` is false the first time. */
  up: [{ reconnect: boolean }];
  /** Lost the broker; reconnection attempts follow. */
  down: [{ reason: string }];
  /** A fatal problem: the broker refused the login (AUTH_FAILED); no more reconnects. */
  error: [SdkError];
  /** A device's presence changed (after subscribePresence). */
  presence: [deviceId: string, online: boolean];
  /** The node drains and asked this client to move: it leaves within `reconnectMs` for one of `servers` other nodes. */
  moving: [{ servers: number }];
};

let clientSeq = 0;
function randomSuffix(): string {
  const bytes = new Uint8Array(4);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A random UUID; also on plain-http pages, where browsers offer getRandomValues but not randomUUID. */
export function newMsgId(): string {
  if (typeof globalThis.crypto.randomUUID === 'function') return globalThis.crypto.randomUUID();
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  b[6] = ((b[6] as number) & 0x0f) | 0x40;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * MQTT.js' own reconnection timer, which would retry the same URL at a fixed pace, never fires:
 * the Reconnector decides (a period of 0 would also drop the messages waiting for the broker).
 */
const MQTTJS_RECONNECT_NEVER_MS = 2 ** 31 - 1;

/** How long a move waits for the draining node's acknowledgements, and then for its close. */
const LEAVE_WAIT_MS = 5000;

/** Points MQTT.js at `url` for its next connection (it builds each from its options). */
function aimAt(options: IClientOptions, url: string): void {
  const u = new URL(url);
  const protocol = u.protocol.replace(/:$/, '') as NonNullable<IClientOptions['protocol']>;
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const secure = protocol === 'wss' || protocol === 'mqtts' || protocol === 'ssl';
  const ws = protocol === 'ws' || protocol === 'wss';
  options.protocol = protocol;
  options.host = host;
  options.hostname = host;
  options.port = u.port === '' ? (ws ? (secure ? 443 : 80) : (secure ? 8883 : 1883)) : Number(u.port);
  if (ws) options.path = `${u.pathname}${u.search}`;
  else delete options.path;
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** A CONNACK refusal of MQTT 3.1.1 §3.2.2.3 (4: bad username or password, 5: not authorized). */
function isAuthRefusal(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 4 || code === 5 || code === 134 || code === 135;
}

export class SignalingClient extends Emitter<SignalingEvents> {
  readonly id: string;
  readonly role: 'app' | 'device';
  private readonly client: MqttClient;
  private readonly presenceFilters = new Set<string>();
  private everUp = false;
  private closed = false;
  private isUp = false;
  private readonly tokenProvider: (() => Promise<string>) | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshing: Promise<boolean> | undefined;
  private readonly urls: SignalingUrls;
  private readonly reconnector: Reconnector;
  /** A drain notice's move happens within this (reconnectMs). */
  private readonly moveSpreadMs: number;
  /** A move ended the connection cleanly: the next attempt starts with new stores. */
  private leftCleanly = false;
  /** No more attempts: a fatal refusal, or open() gave up. */
  private gaveUp = false;
  /** The last attempt got CONNACK 3: the node is busy, not gone (reconnect.ts `busy`). */
  private busyRefusal = false;
  /** Sends waiting for the next `up` (nextUp), told when no more attempts will come. */
  private readonly upWaiters = new Set<(err: SdkError) => void>();

  private constructor(opts: SignalingOptions) {
    super();
    this.urls = new SignalingUrls(opts.url);
    if (opts.servers) this.urls.use(opts.servers);
    this.moveSpreadMs = opts.reconnectMs ?? 1000;
    this.id = opts.id;
    this.role = opts.role;
    this.tokenProvider = opts.tokenProvider;
    const presence = opts.role === 'device';
    // A device keeps a persistent session under its own id (docs/signaling.md "Delivery"): what is
    // sent to it while it is away — its node died, it is between two connections — waits in the
    // broker (on the fabric, in Redis) and arrives when it is back, on whichever node. Its id is
    // stable across restarts, so a restart takes its session over instead of leaving one behind
    // that would be queued for until it expires. An app's session is clean, under an id of its own.
    const options: IClientOptions = {
      clientId: presence ? opts.id : `${opts.id}-${(++clientSeq).toString(36)}${randomSuffix()}`,
      username: opts.id,
      password: opts.token,
      clean: !presence,
      protocolVersion: 4,
      reconnectPeriod: MQTTJS_RECONNECT_NEVER_MS,
      connectTimeout: opts.connectTimeoutMs ?? 8000,
      keepalive: 15,
      resubscribe: false,
      ...(presence ? { will: { topic: presenceTopic(opts.id), payload: 'offline', qos: 1, retain: true } } : {}),
    };
    this.client = mqtt.connect(opts.url, options);
    this.reconnector = new Reconnector({
      clock: opts.clock ?? realClock,
      backoff: new Backoff({ baseMs: opts.reconnectMs ?? 1000, maxMs: opts.reconnectMaxMs ?? 30_000 }),
      urls: this.urls,
      leave: (then) => {
        if (this.closed) return;
        void this.leaveNode().then((clean) => {
          this.leftCleanly = clean;
          then();
        });
      },
      attempt: (url) => {
        if (this.closed || this.gaveUp) return;
        aimAt(this.client.options, url);
        if (this.leftCleanly) {
          // end() waited for every acknowledgement and then closed MQTT.js' stores: new ones.
          this.leftCleanly = false;
          this.client.reconnect();
          return;
        }
        // The same stores: QoS 1 messages waiting for the broker leave on the new connection.
        this.client.reconnect({ incomingStore: this.client.incomingStore, outgoingStore: this.client.outgoingStore });
      },
    });
    this.client.on('connect', () => {
      this.reconnector.connected();
      this.scheduleRefresh();
      void this.onConnect();
    });
    this.client.on('close', () => {
      if (this.isUp) {
        this.isUp = false;
        if (!this.closed) this.emit('down', { reason: this.tokenExpired() ? 'the token expired' : 'connection to the broker lost' });
      }
      // Closed at the token's expiry before the refresh was due (a clock skew): get one now.
      if (!this.closed && this.tokenExpired()) void this.refreshToken();
      // A lost connection and a failed attempt alike: the next URL, after a jittered wait (a
      // move's own end goes on by itself).
      if (!this.closed && !this.gaveUp && !this.reconnector.moving) {
        if (this.busyRefusal) this.reconnector.busy();
        else this.reconnector.lost();
      }
      this.busyRefusal = false;
    });
    this.client.on('error', (err) => {
      // MQTT 3.1.1 §3.2.2.3: 3 = server unavailable; p2pd answers it to a login past its logins in flight.
      if ((err as { code?: unknown }).code === 3) this.busyRefusal = true;
      if (!isAuthRefusal(err) || this.closed) return;
      if (this.tokenProvider !== undefined && this.tokenExpired()) {
        // Refused because the token ran out: log in again with a fresh one (reconnect is suppressed after a CONNACK refusal).
        // The attempt the Reconnector has scheduled logs in with it.
        void this.refreshToken().then((ok) => {
          if (!ok && !this.closed) this.fail(opts.id, err);
        });
        return;
      }
      this.fail(opts.id, err);
    });
    this.client.on('message', (topic, payload) => this.onMessage(topic, payload));
  }

  /**
   * Leaves the node for a move (docs/signaling.md "Draining"): a clean DISCONNECT once the broker
   * acknowledged every QoS 1 message in flight, so no will fires and a device's presence stays
   * online. A node that goes first, or does not acknowledge within LEAVE_WAIT_MS, is dropped
   * instead: its unacknowledged messages stay in the stores and leave again on the next node.
   * Resolves true after a clean DISCONNECT.
   */
  private async leaveNode(): Promise<boolean> {
    const c = this.client;
    const acked = await new Promise<boolean>((resolve) => {
      if (!c.connected || Object.keys(c.outgoing).length === 0) {
        resolve(c.connected);
        return;
      }
      const settle = (ok: boolean): void => {
        clearTimeout(timer);
        c.off('outgoingEmpty', onEmpty);
        c.off('close', onClose);
        resolve(ok);
      };
      const onEmpty = (): void => settle(c.connected);
      const onClose = (): void => settle(false);
      const timer = setTimeout(() => settle(false), LEAVE_WAIT_MS);
      c.on('outgoingEmpty', onEmpty);
      c.on('close', onClose);
    });
    if (acked) {
      await new Promise<void>((resolve) => {
        // The DISCONNECT is written; a peer that never closes its side must not hold the move.
        const timer = setTimeout(() => c.stream.destroy(), LEAVE_WAIT_MS);
        c.end(false, {}, () => {
          clearTimeout(timer);
          resolve();
        });
      });
      return true;
    }
    if (!c.stream.destroyed) {
      await new Promise<void>((resolve) => {
        c.stream.once('close', () => resolve());
        c.stream.destroy();
      });
    }
    return false;
  }

  private fail(id: string, err: Error): void {
    this.stopReconnecting();
    this.client.end(true);
    this.clearRefresh();
    this.emit('error', new SdkError('AUTH_FAILED', `the broker refused the login of ${id}: ${err.message}`));
  }

  private stopReconnecting(): void {
    this.gaveUp = true;
    this.reconnector.stop();
    for (const reject of this.upWaiters) reject(new SdkError('CLOSED', 'signaling is closed'));
    this.upWaiters.clear();
  }

  /** The URL of the connection now (or of the attempt under way). */
  get url(): string {
    return this.urls.current;
  }

  /** The URLs reconnection tries, in order. */
  get urlList(): readonly string[] {
    return this.urls.all;
  }

  /**
   * Takes the service's signaling nodes, nearest first (`signaling` of a session answer or of
   * `GET /v1/signaling`): where the next reconnection goes. The connection now stays as it is.
   */
  useServers(servers: readonly { readonly urls: readonly string[] }[] | undefined): void {
    if (Array.isArray(servers)) this.urls.use(servers);
  }

  /** The token the next login sends. */
  private get token(): string {
    return String(this.client.options.password ?? '');
  }

  /** Expiry of the current token, unix ms (undefined: none or unreadable). */
  private tokenExpiryMs(): number | undefined {
    try {
      const exp = readTokenClaims(this.token).exp;
      return exp === undefined ? undefined : exp * 1000;
    } catch {
      return undefined;
    }
  }

  private tokenExpired(): boolean {
    const expMs = this.tokenExpiryMs();
    return expMs !== undefined && expMs <= Date.now();
  }

  private clearRefresh(): void {
    if (this.refreshTimer !== undefined) clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
  }

  /** Fetches the next token a little before the current one expires. */
  private scheduleRefresh(): void {
    this.clearRefresh();
    const expMs = this.tokenExpiryMs();
    if (this.tokenProvider === undefined || expMs === undefined || this.closed) return;
    const leftMs = expMs - Date.now();
    const delayMs = Math.max(0, leftMs - Math.min(REFRESH_AHEAD_MS, leftMs / 4));
    // setTimeout's longest delay is about 24.8 days; a longer token is looked at again then.
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      if (Date.now() < expMs - Math.min(REFRESH_AHEAD_MS, (expMs - Date.now()) / 4) - 1000) this.scheduleRefresh();
      else void this.refreshToken();
    }, Math.min(delayMs, 2 ** 31 - 1));
    (this.refreshTimer as { unref?: () => void }).unref?.();
  }

  /** Asks the provider for a fresh token for the next login; true when the token changed. */
  private refreshToken(): Promise<boolean> {
    const provider = this.tokenProvider;
    if (provider === undefined) return Promise.resolve(false);
    this.refreshing ??= (async () => {
      try {
        const fresh = await provider();
        const claims = readTokenClaims(fresh);
        if (claims.sub !== this.id) throw new SdkError('AUTH_FAILED', `the token provider gave a token for ${claims.sub}, not ${this.id}`);
        const changed = fresh !== this.token;
        this.client.options.password = fresh;
        // The open connection keeps its old login until the broker closes it; look ahead again from the new expiry.
        this.scheduleRefresh();
        return changed;
      } catch {
        // Not fatal yet: the open connection lasts until its expiry, and a refused login asks again once.
        return false;
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  /** Connects (or fails with AUTH_FAILED / SIGNALING_UNAVAILABLE / TIMEOUT); reconnects by itself afterwards. */
  static open(opts: SignalingOptions): Promise<SignalingClient> {
    const c = new SignalingClient(opts);
    const limitMs = (opts.connectTimeoutMs ?? 8000) + 2000;
    return new Promise((resolve, reject) => {
      let lastError: unknown;
      const onErr = (err: Error): void => {
        lastError = err;
        // Nothing listens there, nor at any other URL: say so now rather than after the timeout.
        if (UNREACHABLE.has(String((err as { code?: unknown }).code)) && c.urls.lastChance) {
          done();
          c.stopReconnecting();
          c.client.end(true);
          reject(signalingUnavailable(`cannot connect to the signaling broker at ${c.urls.all.join(', ')}: ${err.message}`, err));
        }
      };
      c.client.on('error', onErr);
      const timer = setTimeout(() => {
        done();
        c.stopReconnecting();
        c.client.end(true);
        reject(lastError === undefined ? timeout(`connecting to the signaling broker at ${opts.url}`, limitMs)
          : signalingUnavailable(`cannot connect to the signaling broker at ${opts.url}: ${(lastError as Error).message}`, lastError));
      }, limitMs);
      const offUp = c.once('up', () => { done(); resolve(c); });
      const offFatal = c.once('error', (err) => { done(); reject(err); });
      function done(): void {
        clearTimeout(timer);
        offUp();
        offFatal();
        c.client.off('error', onErr);
      }
    });
  }

  get connected(): boolean {
    return this.isUp;
  }

  private async onConnect(): Promise<void> {
    const own = this.role === 'app' ? appTopic(this.id) : deviceTopic(this.id);
    const subscribed = this.client.subscribeAsync([own, ...this.presenceFilters], { qos: 1 }).then((granted) => {
      if (granted[0]?.qos !== 128) return true;
      this.stopReconnecting();
      this.client.end(true);
      this.isUp = false;
      this.emit('error', new SdkError('FORBIDDEN', `the broker refused ${this.id} its own topic ${own}`));
      return false;
    }, (err: unknown) => {
      // The connection dropped while subscribing: the next `connect` tries again.
      if (this.client.connected) this.emit('error', signalingUnavailable(`subscribing failed: ${(err as Error).message}`, err));
      return false;
    });
    if (this.role === 'app') {
      // An app is up once its SUBSCRIBE is sent, not when the SUBACK is back (a round trip at
      // setup, docs/client.md "Setup time"): the broker takes a connection's packets in order,
      // and any reply to what the app sends next comes a round trip through its peer later.
      // A refused subscription still fails the client when the SUBACK says so.
      this.markUp();
      return;
    }
    if (!await subscribed) return;
    try {
      await this.client.publishAsync(presenceTopic(this.id), 'online', { qos: 1, retain: true });
    } catch (err) {
      if (!this.client.connected) return;
      this.emit('error', signalingUnavailable(`publishing presence failed: ${(err as Error).message}`, err));
      return;
    }
    this.markUp();
  }

  private markUp(): void {
    const reconnect = this.everUp;
    this.everUp = true;
    this.isUp = true;
    this.emit('up', { reconnect });
  }

  private onMessage(topic: string, payload: Uint8Array): void {
    const text = new TextDecoder().decode(payload);
    if (topic.startsWith(PRESENCE_PREFIX)) {
      const deviceId = topic.slice(PRESENCE_PREFIX.length);
      this.emit('presence', deviceId, text.trim() === 'online');
      return;
    }
    let m: unknown;
    try {
      m = JSON.parse(text);
    } catch {
      return; // not ours to answer: the service validates what peers send
    }
    const o = m as Partial<SignalMessage>;
    if (typeof o !== 'object' || o === null || typeof o.type !== 'string' || !TYPES.includes(o.type) || typeof o.from !== 'string') return;
    if (o.type === 'error' && o.from === SERVER && isDrainNotice(o.payload)) {
      // The node drains: move to the nodes it lists (docs/signaling.md "Draining").
      this.urls.use(o.payload.signaling);
      this.reconnector.move(this.moveSpreadMs);
      this.emit('moving', { servers: o.payload.signaling.length });
      return;
    }
    const msg: SignalMessage = {
      type: o.type,
      sessionId: typeof o.sessionId === 'string' ? o.sessionId : '',
      from: o.from,
      to: typeof o.to === 'string' ? o.to : '',
      payload: typeof o.payload === 'object' && o.payload !== null ? o.payload : {},
      timestamp: typeof o.timestamp === 'number' ? o.timestamp : Date.now(),
      ...(typeof o.msgId === 'string' ? { msgId: o.msgId } : {}),
      ...(typeof o.replyTo === 'string' ? { replyTo: o.replyTo } : {}),
    };
    this.emit('message', msg);
  }

  /**
   * Publishes a message to a peer (apps to devices, devices to apps). Resolves once the broker
   * acknowledged it (QoS 1) or it left (QoS 0); while disconnected, QoS 1 messages wait in
   * MQTT.js' queue and leave on reconnection. Returns the msgId.
   */
  async send(to: string, type: Exclude<MessageType, 'session'>, sessionId: string, payload: Record<string, unknown>, opts: { msgId?: string; replyTo?: string; qos?: 0 | 1 } = {}): Promise<string> {
    const msgId = opts.msgId ?? newMsgId();
    const body = { type, sessionId, from: this.id, to, msgId, ...(opts.replyTo === undefined ? {} : { replyTo: opts.replyTo }), payload, timestamp: Date.now() };
    const topic = this.role === 'app' ? deviceTopic(to) : appTopic(to);
    const qos = opts.qos ?? 1;
    if (this.closed) throw new SdkError('CLOSED', 'signaling is closed');
    if (qos === 0 && (!this.isUp || this.reconnector.moving)) return msgId; // a keepalive while offline: the next one will do
    // MQTT.js refuses a publish while it ends a connection: one sent during a move leaves on the next.
    if (this.reconnector.moving) await this.nextUp();
    await this.client.publishAsync(topic, JSON.stringify(body), { qos });
    return msgId;
  }

  /** Resolves at the next `up`; rejects with CLOSED if the client closes first. */
  private nextUp(): Promise<void> {
    if (this.closed || this.gaveUp) return Promise.reject(new SdkError('CLOSED', 'signaling is closed'));
    return new Promise((resolve, reject) => {
      const abandon = (err: SdkError): void => { offUp(); reject(err); };
      const offUp = this.once('up', () => { this.upWaiters.delete(abandon); resolve(); });
      this.upWaiters.add(abandon);
    });
  }

  /** Apps: follow devices' presence (`+` = every device the token allows). */
  async subscribePresence(deviceIds: readonly string[] | '*'): Promise<void> {
    const filters = deviceIds === '*' ? [presenceTopic('+')] : deviceIds.map(presenceTopic);
    for (const f of filters) this.presenceFilters.add(f);
    if (this.isUp) await this.client.subscribeAsync(filters, { qos: 1 });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.isUp = false;
    this.clearRefresh();
    this.stopReconnecting();
    try {
      if (this.role === 'device' && this.client.connected) {
        await Promise.race([
          this.client.publishAsync(presenceTopic(this.id), 'offline', { qos: 1, retain: true }),
          new Promise((r) => setTimeout(r, 1000)),
        ]);
      }
    } catch { /* going away anyway; the will says offline */ }
    // A graceful end waits for in-flight messages; a dead broker must not hold us.
    await Promise.race([
      new Promise<void>((resolve) => this.client.end(false, {}, () => resolve())),
      new Promise<void>((resolve) => setTimeout(resolve, 2000)),
    ]);
    if (!this.client.disconnected) this.client.end(true);
    this.removeAllListeners();
  }

  /**
   * Drops the connection and connects again at once (the host changed networks: a TCP connection
   * from an address that is gone would only be noticed at the next keepalive).
   */
  reconnect(): void {
    if (this.closed) return;
    (this.client as unknown as { stream?: { destroy(): void } }).stream?.destroy();
  }

  /**
   * reconnect() when the connection's local address is one of `gone` ('*': unknown, as in a
   * browser, whose sockets say nothing): a connection from an address still here is left alone.
   */
  reconnectIfFrom(gone: readonly string[]): void {
    const local = (this.client as unknown as { stream?: { localAddress?: string } }).stream?.localAddress;
    if (gone.includes('*') || local === undefined || gone.includes(local.replace(/^::ffff:/, ''))) this.reconnect();
  }

  /** Drops the connection without a goodbye (tests: the will fires as on a crash). */
  destroy(): void {
    this.closed = true;
    this.isUp = false;
    this.clearRefresh();
    this.stopReconnecting();
    this.client.end(true);
    this.removeAllListeners();
  }
}
