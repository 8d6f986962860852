/**
 * The signaling role on an external broker (`--mqtt-url`: Mosquitto, EMQX). The node joins as a
 * service client; apps and devices publish straight to each other's topics (the broker's ACL
 * enforces topic rights, see deploy/mosquitto and deploy/emqx). Every signaling node subscribes
 * to the signal topics in the shared group `$share/p2pd/…`, so the broker hands each message to
 * exactly one node; presence is subscribed normally, so every node knows every device.
 */
import { randomBytes } from 'node:crypto';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from '../log.ts';
import type { SignalingPublisher, SignalingService } from './service.ts';
import { PRESENCE_PREFIX, SERVER_TOPIC, appTopic, deviceTopic, sharedFilter } from './topics.ts';

export interface ExternalBrokerOptions {
  /** `mqtt://user:password@host:1883` (also mqtts, ws, wss); the user is the service's own. */
  readonly url: string;
  readonly service: SignalingService;
  readonly log: Logger;
  /** How long after subscribing the retained presence messages are taken as complete. */
  readonly presenceSettleMs?: number;
  readonly clientId?: string;
}

export interface ExternalBroker extends SignalingPublisher {
  readonly client: MqttClient;
  close(): Promise<void>;
}

/** The filters of one signaling node: [filter, shared]. */
export const SERVICE_FILTERS: ReadonlyArray<readonly [string, boolean]> = [
  [appTopic('+'), true],
  [deviceTopic('+'), true],
  [SERVER_TOPIC, true],
  [`${PRESENCE_PREFIX}+`, false],
];

export async function connectExternalBroker(opts: ExternalBrokerOptions): Promise<ExternalBroker> {
  const log = opts.log.child({ role: 'signal', broker: redact(opts.url) });
  const { service } = opts;
  const url = new URL(opts.url);
  const options: IClientOptions = {
    clientId: opts.clientId ?? `p2pd-signal-${randomBytes(6).toString('hex')}`,
    clean: true,
    protocolVersion: 4,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    resubscribe: true,
  };
  if (url.username) options.username = decodeURIComponent(url.username);
  if (url.password) options.password = decodeURIComponent(url.password);
  url.username = '';
  url.password = '';
  if (url.protocol === 'tcp:') url.protocol = 'mqtt:';

  const client = await connectAsync(url.toString(), options);
  // Answers and errors are latency-bound: no Nagle delay on TCP (MQTT.js leaves it on).
  const noDelay = (): void => (client.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
  noDelay();
  client.on('connect', noDelay);
  // Messages to one recipient are handled in order (trace order, status changes); different
  // recipients proceed in parallel.
  const chains = new Map<string, Promise<void>>();
  client.on('message', (topic, payload) => {
    const previous = chains.get(topic) ?? Promise.resolve();
    const next = previous.then(() => service.observe(topic, payload)).catch((err: unknown) => log.error({ err }, 'signaling message failed'));
    chains.set(topic, next);
    void next.then(() => {
      if (chains.get(topic) === next) chains.delete(topic);
    });
  });
  client.on('error', (err) => log.warn({ err: err.message }, 'MQTT service client error'));
  client.on('reconnect', () => log.info('reconnecting to the MQTT broker'));
  client.on('connect', () => log.info('connected to the MQTT broker'));

  const granted = await client.subscribeAsync(SERVICE_FILTERS.map(([f, shared]) => (shared ? sharedFilter(f) : f)), { qos: 1 });
  const refused = granted.filter((g) => g.qos === 128).map((g) => g.topic);
  if (refused.length > 0) {
    await client.endAsync(true);
    throw new Error(`the broker refused the signaling service's subscriptions ${refused.join(', ')}: check its ACL (docs/signaling.md)`);
  }
  // Retained presence arrives right after the SUBACK; until it settles, unknown devices are
  // "don't know" rather than offline.
  setTimeout(() => service.presence.markReady(), opts.presenceSettleMs ?? 500).unref();
  log.info('signaling joined the external broker');

  return {
    client,
    async publish(topic, payload, { qos, retain = false }) {
      await client.publishAsync(topic, payload, { qos, retain });
    },
    async close() {
      await Promise.allSettled([...chains.values()]);
      await client.endAsync();
    },
  };
}

/** The URL without its password, for logs. */
export function redact(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'invalid URL';
  }
}
