/**
 * The signaling role of a node: the embedded broker (TCP `--mqtt`, WebSocket `/mqtt`) with the
 * signaling gate, or the service client of an external broker (`--mqtt-url`), plus the broker
 * routes. Call before the HTTP server listens (it adds routes).
 */
import type { FastifyInstance } from 'fastify';
import { createVerifier, type TokenVerifier } from '../auth/token.ts';
import { DynsecProvisioner } from '../broker/dynsec.ts';
import { startEmbeddedBroker, type EmbeddedBroker } from '../broker/embedded.ts';
import { createBrokerFabric, type BrokerFabric } from '../broker/fabric.ts';
import { registerBrokerRoutes } from '../broker/routes.ts';
import type { SignalingServer } from '../cluster/signalingServers.ts';
import type { Config } from '../config/config.ts';
import type { Logger } from '../log.ts';
import type { SessionActions } from '../session/actions.ts';
import type { SessionStore } from '../session/store.ts';
import { connectExternalBroker, redact, type ExternalBroker } from '../signaling/external.ts';
import { PresenceTracker } from '../signaling/presence.ts';
import { SignalingService } from '../signaling/service.ts';
import { defaultMaxConnections, openFileLimit } from './openFiles.ts';

export interface SignalingRoleOptions {
  readonly config: Config;
  readonly log: Logger;
  readonly http: FastifyInstance;
  readonly store: SessionStore;
  /** The session creation of POST /v1/sessions (session/actions.ts), for `session` requests. */
  readonly createSession: SessionActions['create'];
  readonly verifier?: TokenVerifier;
}

export interface SignalingRole {
  readonly service: SignalingService;
  /** For the HTTP API: true/false when known, undefined while presence is still loading. */
  isDeviceOnline(deviceId: string): boolean | undefined;
  /** The embedded broker's TCP port as bound (undefined with an external broker). */
  readonly mqttPort: number | undefined;
  readonly broker: EmbeddedBroker | ExternalBroker;
  /**
   * The node drains: with the embedded broker in the fabric and another node to go to (`listFor`
   * a client's id: signalingServers), its clients are told to move (docs/signaling.md
   * "Draining"). How many were told; 0 when they have nowhere to go, or on one broker alone.
   */
  moveClients(listFor: (id: string) => readonly SignalingServer[]): number;
  /** Clients connected to this node's embedded broker (0 with an external broker). */
  readonly clientCount: number;
  stop(): Promise<void>;
}

export async function startSignaling(opts: SignalingRoleOptions): Promise<SignalingRole> {
  const { config, log, http, store, createSession } = opts;
  const verifier = opts.verifier ?? await createVerifier({ secret: config.jwtSecret, previousSecret: config.jwtSecretPrevious, publicKeyPem: config.jwtPublicKeyPem });
  const external = config.mqttUrl !== undefined;
  const service = new SignalingService({
    store, createSession, verifier, log, presence: new PresenceTracker({ ready: !external }),
    wake: { timeoutMs: config.wakeTimeoutSec * 1000, webhook: config.wakeWebhook },
  });

  let broker: EmbeddedBroker | ExternalBroker;
  let fabric: BrokerFabric | undefined;
  if (config.mqttUrl === undefined) {
    // Several nodes over one Redis are one service: their brokers are one too (docs/signaling.md).
    if (config.redisUrls.length > 0 && config.mqttFabric === 'redis') fabric = await createBrokerFabric({ urls: config.redisUrls, log });
    broker = await startEmbeddedBroker({
      verifier, gate: service, log, tcp: config.mqtt, http: http.server,
      maxPacketBytes: config.mqttMaxPacketBytes, preauthPerSource: config.mqttPreauthPerSource,
      maxConnections: config.mqttMaxConnections ?? defaultMaxConnections(openFileLimit()),
      maxLoginsInFlight: config.mqttMaxLoginsInFlight,
      maxLoginsWaiting: config.mqttMaxLoginsWaiting,
      loginWaitMs: config.mqttLoginWaitSec * 1000,
      fabricHeartbeatMs: Math.max(1000, config.heartbeatIntervalSec * 1000),
      ...(fabric === undefined ? {} : { fabric }),
    });
    registerBrokerRoutes(http, { verifier, log, hookSecret: config.brokerHookSecret });
  } else {
    const ext = await connectExternalBroker({ url: config.mqttUrl, service, log });
    broker = ext;
    let provisioner: DynsecProvisioner | undefined;
    if (config.mqttDynsec) {
      provisioner = new DynsecProvisioner(ext.client, log);
      await provisioner.start();
    }
    const u = new URL(config.mqttUrl);
    const serviceLogin = u.username ? { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) } : undefined;
    registerBrokerRoutes(http, { verifier, log, provisioner, serviceLogin, hookSecret: config.brokerHookSecret });
    log.info({ broker: redact(config.mqttUrl), dynsec: config.mqttDynsec }, 'signaling on an external broker');
  }
  service.setPublisher(broker);

  return {
    service,
    broker,
    mqttPort: 'tcpPort' in broker ? broker.tcpPort : undefined,
    isDeviceOnline: (id) => service.isDeviceOnline(id),
    moveClients(listFor) {
      // Without the fabric another node's broker would not reach this one's clients' peers.
      if (fabric === undefined || !('moveClients' in broker) || listFor('').length === 0) return 0;
      return broker.moveClients(listFor);
    },
    get clientCount() {
      return 'clientCount' in broker ? broker.clientCount : 0;
    },
    async stop() {
      await broker.close();
      await fabric?.close();
      await service.stop();
    },
  };
}
