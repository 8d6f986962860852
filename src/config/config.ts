/**
 * The typed, validated, frozen configuration of `p2pd serve`. Built once at start from the
 * command line, `P2PD_*` variables and the `--config` file (in that precedence, then the defaults
 * here); nothing below the CLI reads `process.env`.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism, hostname } from 'node:os';
import { accessSync, constants, readFileSync } from 'node:fs';
import { conflict, invalidValue } from '../errors.ts';
import { SERVE_OPTIONS } from './options.ts';
import { getFlag, getList, getString, parseOptions, withFallback } from './parse.ts';
import { readConfigFile } from './file.ts';
import {
  isWildcard, parseCidr, parseExternalIp, parseHostName, parseHostPort, parseInteger, parseIp, parsePortRange, parseUser, splitItems,
  type Cidr, type ExternalIpPair, type HostPort, type PortRange, type StaticUser,
} from './values.ts';
import { advertisedAddress } from './advertised.ts';

export const ROLES = ['stun', 'turn', 'signal', 'api'] as const;
export type Role = (typeof ROLES)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Config {
  readonly roles: ReadonlySet<Role>;
  readonly listen: string;
  readonly port: number;
  /** Present when both --tls-cert and --tls-key are given; `host` (--tls-host) names the turns: URL's host. */
  readonly tls: { readonly port: number; readonly certFile: string; readonly keyFile: string; readonly host: string | undefined } | undefined;
  /** RFC 5780 second address; absent unless --alt-ip is set. */
  readonly alt: { readonly ip: string; readonly port: number } | undefined;
  /** The plain --external-ip (default --listen): told for --listen and for local addresses without a pair. */
  readonly externalIp: string;
  /** `--external-ip PUBLIC/PRIVATE`: what one local address (a --relay-ip, --listen) is told as (advertised.ts). */
  readonly externalIpPairs: readonly ExternalIpPair[];
  /**
   * Where relay sockets bind, each address with a --relay-ports range of its own (the book's pools,
   * in this order): the IPv4 --relay-ip addresses, then the IPv6 ones, or --relay-ip6 when
   * --relay-ip names none. Default: --listen (and ::1 beside a loopback one).
   */
  readonly relayIps: readonly string[];
  readonly relayPorts: PortRange;
  /** --relay-ip6: the IPv6 relay address when --relay-ip names none; undefined = none given (IPv6 relays refused with 440 unless --relay-ip has one). */
  readonly relayIp6: string | undefined;
  /** Longest allocation lifetime a client may ask for (RFC 8656 §7.2: 3600 s). */
  readonly maxLifetimeSec: number;
  readonly permissionLifetimeSec: number;
  readonly channelLifetimeSec: number;
  readonly nonceLifetimeSec: number;
  readonly realm: string;
  readonly authSecret: string;
  /** --auth-secret-previous: TURN REST credentials minted with it still verify; none are minted with it. */
  readonly authSecretPrevious: string | undefined;
  /** True when no --auth-secret was given and one was generated (logged as a warning). */
  readonly authSecretGenerated: boolean;
  readonly users: readonly StaticUser[];
  readonly userQuota: number;
  readonly maxAllocations: number;
  readonly secureStun: boolean;
  readonly allowPeers: readonly Cidr[];
  readonly maxBps: number;
  readonly workers: number;
  readonly udpIo: UdpIo;
  readonly http: HostPort;
  readonly mqtt: HostPort;
  readonly mqttUrl: string | undefined;
  /** With --mqtt-url: provision clients in Mosquitto's dynamic-security plugin. */
  readonly mqttDynsec: boolean;
  readonly redisUrls: readonly string[];
  readonly region: string;
  readonly jwtSecret: string;
  /** --jwt-secret-previous: HS256 tokens signed with it still verify. */
  readonly jwtSecretPrevious: string | undefined;
  readonly jwtSecretGenerated: boolean;
  readonly jwtPublicKeyPem: string | undefined;
  readonly sessionTtlSec: number;
  readonly logLevel: LogLevel;
  /** This node's id in the cluster registry. */
  readonly nodeId: string;
  /** Seconds between sweeps for stale sessions (fractions allowed, for tests). */
  readonly sweepIntervalSec: number;
  /** Seconds between cluster heartbeats (fractions allowed, for tests). */
  readonly heartbeatIntervalSec: number;
  /** On SIGTERM: how long live relays may go on before the node stops (docs/turn.md "Draining"). */
  readonly drainGraceSec: number;
  /** Relay bits/s past which the node takes no new sessions; 0 = unlimited. */
  readonly turnCapacityBps: number;
  readonly geoipDb: string | undefined;
  /** Path of the region table (read and checked when the session services start). */
  readonly regionMapFile: string | undefined;
  /** Who may call POST /v1/dev/token (only registered when the token key was generated). */
  readonly devTokens: DevTokens;
  /** Ranges denied as TURN peers besides the defaults (they win over --allow-peer). */
  readonly denyPeers: readonly Cidr[];
  /** Permissions per allocation (RFC 8656 §9 sets no bound; we do). */
  readonly maxPermissions: number;
  /** Channel bindings per allocation. */
  readonly maxChannels: number;
  /** TURN allocations per principal (token sub) across its sessions; 0 = unlimited. */
  readonly principalQuota: number;
  /** Open sessions per app; 0 = unlimited. */
  readonly maxSessionsPerApp: number;
  /** Open sessions (viewers) per device; 0 = unlimited. */
  readonly maxViewers: number;
  /** HTTP API requests/s per token; 0 = unlimited. */
  readonly rateLimitToken: number;
  /** HTTP API requests/s per source IP; 0 = unlimited. */
  readonly rateLimitSource: number;
  /** Seconds to send an HTTP request's headers and body. */
  readonly httpTimeoutSec: number;
  /** Shared secret of POST /v1/mqtt/auth; undefined = loopback callers only. */
  readonly brokerHookSecret: string | undefined;
  /** Largest MQTT packet after login, bytes. */
  readonly mqttMaxPacketBytes: number;
  /** MQTT connections per source IP before login. */
  readonly mqttPreauthPerSource: number;
  /** MQTT logins (CONNECT to CONNACK) under way at once on this node; 0 = unlimited (docs/signaling.md "Logins in flight"). */
  /** `--mqtt-max-connections`; undefined: from the open-file limit (src/server/openFiles.ts), 0 = unbounded. */
  readonly mqttMaxConnections: number | undefined;
  readonly mqttMaxLoginsInFlight: number;
  /** MQTT logins that may wait for one of those in flight; 0 = none wait (docs/signaling.md "Logins in flight"). */
  readonly mqttMaxLoginsWaiting: number;
  /** The longest an MQTT login waits for one of those in flight, seconds. */
  readonly mqttLoginWaitSec: number;
  /** `--signal-url`: where clients reach this node's signaling, as given; empty = derived (advertised.ts advertisedSignalUrls). */
  readonly signalUrls: readonly string[];
  /** `--mqtt-fabric`: the embedded brokers of all nodes joined over Redis (`redis`, with --redis-url), or each alone (`off`). */
  readonly mqttFabric: MqttFabric;
  /** Idle seconds before a STUN/TURN TCP/TLS connection without an allocation is closed; also how long any may leave our answers unread. */
  readonly tcpIdleTimeoutSec: number;
  /** Seconds a TLS client has to finish its handshake on the STUN/TURN TLS port. */
  readonly tlsHandshakeTimeoutSec: number;
  /** STUN/TURN TCP/TLS connections per source IP at once, per worker; 0 = unlimited. */
  readonly tcpMaxPerSource: number;
  /** Days relay usage is kept after its hour ends (docs/operations.md "Usage"). */
  readonly usageRetentionDays: number;
  /** Seconds a session to a sleeping device waits for it to wake; 0 = DEVICE_OFFLINE at once (docs/operations.md "Sleeping cameras"). */
  readonly wakeTimeoutSec: number;
  /** Where wake requests are POSTed, if anywhere. */
  readonly wakeWebhook: string | undefined;
}

export const DEV_TOKENS = ['loopback', 'lan', 'off'] as const;
export type DevTokens = (typeof DEV_TOKENS)[number];

function parseDevTokens(raw: string): DevTokens {
  if (!(DEV_TOKENS as readonly string[]).includes(raw)) throw invalidValue('dev-tokens', raw, DEV_TOKENS.join(', '));
  return raw as DevTokens;
}

/** `--udp-io`: `batch` the udpbatch addon (recvmmsg/sendmmsg), `dgram` Node's, `auto` batch where built. */
export type UdpIo = 'auto' | 'batch' | 'dgram';

function parseUdpIo(raw: string): UdpIo {
  if (raw !== 'auto' && raw !== 'batch' && raw !== 'dgram') throw invalidValue('udp-io', raw, 'auto, batch or dgram');
  return raw;
}

/** `--mqtt-fabric`: `redis` joins the embedded brokers of all nodes over --redis-url (docs/signaling.md), `off` keeps each alone. */
export type MqttFabric = 'redis' | 'off';

function parseMqttFabric(raw: string): MqttFabric {
  if (raw !== 'redis' && raw !== 'off') throw invalidValue('mqtt-fabric', raw, 'redis or off');
  return raw;
}

function parseRoles(raw: string): ReadonlySet<Role> {
  const roles = raw.split(',').map((r) => r.trim()).filter(Boolean);
  if (roles.length === 0) throw invalidValue('roles', raw, `a comma-separated list of ${ROLES.join(', ')}`);
  for (const r of roles) {
    if (!(ROLES as readonly string[]).includes(r)) throw invalidValue('roles', raw, `a comma-separated list of ${ROLES.join(', ')}`);
  }
  return new Set(roles as Role[]);
}

function parseUrlList(name: string, raw: string, protocols: readonly string[]): string[] {
  const urls = raw.split(',').map((u) => u.trim()).filter(Boolean);
  for (const u of urls) {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw invalidValue(name, u, `a URL (${protocols.join(', ')})`);
    }
    if (!protocols.includes(url.protocol)) throw invalidValue(name, u, `a URL (${protocols.join(', ')})`);
  }
  if (urls.length === 0) throw invalidValue(name, raw, 'at least one URL');
  return urls;
}

function readPem(name: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw invalidValue(name, file, `a readable PEM file (${(err as Error).message})`);
  }
}

function parseSeconds(name: string, raw: string, min: number, max: number): number {
  if (!/^\d+(\.\d+)?$/.test(raw)) throw invalidValue(name, raw, `seconds from ${min} to ${max}`);
  const n = Number(raw);
  if (n < min || n > max) throw invalidValue(name, raw, `seconds from ${min} to ${max}`);
  return n;
}

function parseNodeId(raw: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(raw)) throw invalidValue('node-id', raw, 'letters, digits, ".", "_" or "-"');
  return raw;
}

function readableFile(name: string, file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  try {
    accessSync(file, constants.R_OK);
  } catch {
    throw invalidValue(name, file, 'a readable file');
  }
  return file;
}

/** --relay-ip6, or ::1 when the IPv4 relay addresses are loopback (tests and one-machine setups). */
function defaultRelayIp6(raw: string | undefined, relayIps: readonly string[]): string | undefined {
  if (raw !== undefined) {
    const ip = parseIp('relay-ip6', raw);
    if (!ip.includes(':')) throw invalidValue('relay-ip6', raw, 'an IPv6 address');
    return ip;
  }
  const ip4 = relayIps.filter((ip) => !ip.includes(':'));
  return ip4.length > 0 && ip4.every((ip) => ip.startsWith('127.')) ? '::1' : undefined;
}

/** `--relay-ip` as given: one address or several, none twice; a wildcard only alone (it takes the port on every address). */
function parseRelayIps(items: readonly string[], listen: string): string[] {
  const ips = items.length === 0 ? [listen] : items.map((i) => parseIp('relay-ip', i));
  if (new Set(ips).size !== ips.length) throw invalidValue('relay-ip', ips.join(','), 'addresses named once each');
  if (ips.length > 1 && ips.some(isWildcard)) throw conflict('a wildcard --relay-ip (0.0.0.0, ::) goes alone: it binds each relay port on every address');
  return ips;
}

/** `--external-ip`: at most one plain address (default --listen) and PUBLIC/PRIVATE pairs, each local address paired once. */
function parseExternalIps(items: readonly string[], listen: string): { plain: string; pairs: ExternalIpPair[] } {
  let plain: string | undefined;
  const pairs: ExternalIpPair[] = [];
  for (const item of items) {
    const v = parseExternalIp('external-ip', item);
    if (typeof v === 'string') {
      if (plain !== undefined) throw conflict(`--external-ip names one plain address (${plain}, ${v}): write PUBLIC/PRIVATE for each other local address`);
      plain = v;
    } else {
      if (pairs.some((p) => p.privateIp === v.privateIp)) throw conflict(`--external-ip pairs ${v.privateIp} twice`);
      pairs.push(v);
    }
  }
  return { plain: plain ?? listen, pairs };
}

/**
 * The relay addresses in the book's order (Config.relayIps): IPv4 --relay-ip entries, then IPv6
 * ones, else --relay-ip6. No two may be told to clients as one address, nor as another's own
 * (their ports would collide there): a plain --external-ip in front of several relay addresses
 * of its family needs a PUBLIC/PRIVATE pair for each.
 */
function resolveRelayIps(
  given: readonly string[], relayIp6: string | undefined, advertising: Pick<Config, 'listen' | 'externalIp' | 'externalIpPairs'>,
): string[] {
  const v4 = given.filter((ip) => !ip.includes(':'));
  const v6 = given.filter((ip) => ip.includes(':'));
  const all = [...v4, ...(v6.length > 0 ? v6 : relayIp6 === undefined ? [] : [relayIp6])];
  const reached = new Map<string, string>();
  for (const bind of all) {
    const told = advertisedAddress(advertising, bind, bind.includes(':') ? 6 : 4);
    for (const a of new Set([bind, ...(told === undefined ? [] : [told])])) {
      const other = reached.get(a);
      if (other !== undefined && other !== bind) {
        throw conflict(`--relay-ip ${other} and ${bind} would both be reached at ${a}: give each its public address, --external-ip PUBLIC/PRIVATE (docs/turn.md "Several relay addresses")`);
      }
      reached.set(a, bind);
    }
  }
  return all;
}

/**
 * Builds the configuration from a command line (after `serve`), an environment and the file
 * either names with --config / P2PD_CONFIG.
 */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = {}): Config {
  const given = parseOptions(argv, SERVE_OPTIONS, env);
  const file = getString(given, 'config');
  const raw = file === undefined ? given : withFallback(given, readConfigFile(file, SERVE_OPTIONS));
  const str = (name: string): string | undefined => getString(raw, name);

  const listen = parseIp('listen', str('listen') ?? '0.0.0.0');
  const port = parseInteger('port', str('port') ?? '3478', 1, 65535);

  const certFile = str('tls-cert');
  const keyFile = str('tls-key');
  if ((certFile === undefined) !== (keyFile === undefined)) throw conflict('--tls-cert and --tls-key go together: give both or neither');
  const tlsPort = parseInteger('tls-port', str('tls-port') ?? '5349', 1, 65535);
  const tlsHostRaw = str('tls-host');
  if (tlsHostRaw !== undefined && certFile === undefined) throw conflict('--tls-host needs --tls-cert and --tls-key (it names the TLS listener)');
  const tlsHost = tlsHostRaw === undefined ? undefined : parseHostName('tls-host', tlsHostRaw);
  if (certFile !== undefined) {
    readPem('tls-cert', certFile);
    readPem('tls-key', keyFile as string);
  }

  const altIpRaw = str('alt-ip');
  const altPortRaw = str('alt-port');
  if (altIpRaw === undefined && altPortRaw !== undefined) throw conflict('--alt-port needs --alt-ip (RFC 5780 runs only with a second address)');
  const alt = altIpRaw === undefined ? undefined : {
    ip: parseIp('alt-ip', altIpRaw),
    port: altPortRaw === undefined ? port + 1 : parseInteger('alt-port', altPortRaw, 1, 65535),
  };
  if (getFlag(raw, 'mqtt-dynsec') && str('mqtt-url') === undefined) throw conflict('--mqtt-dynsec needs --mqtt-url (it configures an external Mosquitto)');
  if (alt && alt.ip === listen) throw conflict('--alt-ip must differ from --listen');
  if (alt && alt.port === port) throw conflict('--alt-port must differ from --port');

  const authSecretRaw = str('auth-secret');
  const jwtSecretRaw = str('jwt-secret');
  const jwtKeyFile = str('jwt-public-key');
  // A previous secret only makes sense next to the current one it was replaced by.
  if (str('auth-secret-previous') !== undefined && authSecretRaw === undefined) throw conflict('--auth-secret-previous needs --auth-secret (the secret that replaced it)');
  if (str('jwt-secret-previous') !== undefined && jwtSecretRaw === undefined) throw conflict('--jwt-secret-previous needs --jwt-secret (the secret that replaced it)');
  if (str('jwt-secret-previous') !== undefined && jwtKeyFile !== undefined) throw conflict('--jwt-secret-previous verifies HS256 tokens; with --jwt-public-key tokens are ES256');
  const logLevel = str('log-level') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) throw invalidValue('log-level', logLevel, LOG_LEVELS.join(', '));
  const realm = str('realm') ?? 'p2pd';
  if (realm.length === 0 || Buffer.byteLength(realm) > 763) throw invalidValue('realm', realm, 'a non-empty realm under 763 bytes (RFC 8489 §14.9)');
  const region = str('region') ?? 'default';
  if (!/^[a-z0-9][a-z0-9._-]{0,62}$/i.test(region)) throw invalidValue('region', region, 'letters, digits, ".", "_" or "-"');

  const relayGiven = parseRelayIps(splitItems(getList(raw, 'relay-ip')), listen);
  const relayIp6 = defaultRelayIp6(str('relay-ip6'), relayGiven);
  const external = parseExternalIps(splitItems(getList(raw, 'external-ip')), listen);
  const advertising = { listen, externalIp: external.plain, externalIpPairs: external.pairs };

  const config: Config = {
    roles: parseRoles(str('roles') ?? ROLES.join(',')),
    listen,
    port,
    tls: certFile === undefined ? undefined : { port: tlsPort, certFile, keyFile: keyFile as string, host: tlsHost },
    alt,
    externalIp: external.plain,
    externalIpPairs: external.pairs,
    relayIps: resolveRelayIps(relayGiven, relayIp6, advertising),
    relayPorts: parsePortRange('relay-ports', str('relay-ports') ?? '49152-65535'),
    relayIp6,
    maxLifetimeSec: parseInteger('max-lifetime', str('max-lifetime') ?? '3600', 1, 86400),
    permissionLifetimeSec: parseInteger('permission-lifetime', str('permission-lifetime') ?? '300', 1, 86400),
    channelLifetimeSec: parseInteger('channel-lifetime', str('channel-lifetime') ?? '600', 1, 86400),
    nonceLifetimeSec: parseInteger('nonce-lifetime', str('nonce-lifetime') ?? '600', 1, 86400),
    realm,
    authSecret: authSecretRaw ?? randomBytes(24).toString('base64url'),
    authSecretPrevious: str('auth-secret-previous') || undefined,
    authSecretGenerated: authSecretRaw === undefined,
    users: getList(raw, 'user').map((u) => parseUser('user', u)),
    userQuota: parseInteger('user-quota', str('user-quota') ?? '100', 0, 1_000_000),
    maxAllocations: parseInteger('max-allocations', str('max-allocations') ?? '10000', 0, 10_000_000),
    secureStun: getFlag(raw, 'secure-stun'),
    allowPeers: getList(raw, 'allow-peer').map((c) => parseCidr('allow-peer', c)),
    maxBps: parseInteger('max-bps', str('max-bps') ?? '2000000', 0, 100_000_000_000),
    udpIo: parseUdpIo(str('udp-io') ?? 'auto'),
    workers: parseInteger('workers', str('workers') ?? String(availableParallelism()), 1, 256),
    http: parseHostPort('http', str('http') ?? '0.0.0.0:8080'),
    mqtt: parseHostPort('mqtt', str('mqtt') ?? '0.0.0.0:1883'),
    mqttUrl: str('mqtt-url') === undefined ? undefined : parseUrlList('mqtt-url', str('mqtt-url') as string, ['mqtt:', 'mqtts:', 'ws:', 'wss:', 'tcp:'])[0],
    mqttDynsec: getFlag(raw, 'mqtt-dynsec'),
    redisUrls: str('redis-url') === undefined ? [] : parseUrlList('redis-url', str('redis-url') as string, ['redis:', 'rediss:']),
    region,
    jwtSecret: jwtSecretRaw ?? randomBytes(32).toString('base64url'),
    jwtSecretPrevious: str('jwt-secret-previous') || undefined,
    jwtSecretGenerated: jwtSecretRaw === undefined && jwtKeyFile === undefined,
    jwtPublicKeyPem: jwtKeyFile === undefined ? undefined : readPem('jwt-public-key', jwtKeyFile),
    sessionTtlSec: parseInteger('session-ttl', str('session-ttl') ?? '86400', 60, 30 * 86400),
    logLevel: logLevel as LogLevel,
    nodeId: parseNodeId(str('node-id') ?? `${hostname().replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '') || 'node'}-${port}`),
    sweepIntervalSec: parseSeconds('sweep-interval', str('sweep-interval') ?? '300', 0.05, 86400),
    heartbeatIntervalSec: parseSeconds('heartbeat-interval', str('heartbeat-interval') ?? '5', 0.05, 3600),
    drainGraceSec: parseSeconds('drain-grace', str('drain-grace') ?? '0', 0, 86400),
    turnCapacityBps: parseInteger('turn-capacity-bps', str('turn-capacity-bps') ?? '0', 0, 1_000_000_000_000),
    geoipDb: readableFile('geoip-db', str('geoip-db')),
    regionMapFile: readableFile('region-map', str('region-map')),
    devTokens: parseDevTokens(str('dev-tokens') ?? 'loopback'),
    denyPeers: getList(raw, 'deny-peer').map((c) => parseCidr('deny-peer', c)),
    maxPermissions: parseInteger('max-permissions', str('max-permissions') ?? '128', 1, 65536),
    maxChannels: parseInteger('max-channels', str('max-channels') ?? '128', 1, 4096),
    principalQuota: parseInteger('principal-quota', str('principal-quota') ?? '200', 0, 1_000_000),
    maxSessionsPerApp: parseInteger('max-sessions-per-app', str('max-sessions-per-app') ?? '100', 0, 10_000_000),
    maxViewers: parseInteger('max-viewers', str('max-viewers') ?? '10', 0, 1_000_000),
    rateLimitToken: parseInteger('rate-limit-token', str('rate-limit-token') ?? '20', 0, 10_000_000),
    rateLimitSource: parseInteger('rate-limit-source', str('rate-limit-source') ?? '100', 0, 10_000_000),
    httpTimeoutSec: parseSeconds('http-timeout', str('http-timeout') ?? '10', 0.1, 3600),
    brokerHookSecret: str('broker-hook-secret'),
    mqttMaxPacketBytes: parseInteger('mqtt-max-packet', str('mqtt-max-packet') ?? '262144', 1024, 268_435_455),
    mqttPreauthPerSource: parseInteger('mqtt-preauth-per-source', str('mqtt-preauth-per-source') ?? '32', 1, 1_000_000),
    mqttMaxConnections: str('mqtt-max-connections') === undefined ? undefined : parseInteger('mqtt-max-connections', str('mqtt-max-connections') as string, 0, 100_000_000),
    mqttMaxLoginsInFlight: parseInteger('mqtt-max-logins-in-flight', str('mqtt-max-logins-in-flight') ?? '64', 0, 1_000_000),
    mqttMaxLoginsWaiting: parseInteger('mqtt-max-logins-waiting', str('mqtt-max-logins-waiting') ?? '4096', 0, 1_000_000),
    mqttLoginWaitSec: parseSeconds('mqtt-login-wait', str('mqtt-login-wait') ?? '4', 0.01, 60),
    mqttFabric: parseMqttFabric(str('mqtt-fabric') ?? 'redis'),
    signalUrls: getList(raw, 'signal-url').flatMap((u) => parseUrlList('signal-url', u, ['ws:', 'wss:', 'mqtt:', 'mqtts:'])),
    tcpIdleTimeoutSec: parseSeconds('tcp-idle-timeout', str('tcp-idle-timeout') ?? '30', 0.1, 86400),
    tlsHandshakeTimeoutSec: parseSeconds('tls-handshake-timeout', str('tls-handshake-timeout') ?? '10', 0.1, 3600),
    tcpMaxPerSource: parseInteger('tcp-max-per-source', str('tcp-max-per-source') ?? '256', 0, 1_000_000),
    usageRetentionDays: parseInteger('usage-retention', str('usage-retention') ?? '35', 1, 3660),
    wakeTimeoutSec: parseSeconds('wake-timeout', str('wake-timeout') ?? '0', 0, 300),
    wakeWebhook: str('wake-webhook') === undefined ? undefined : parseUrlList('wake-webhook', str('wake-webhook') as string, ['http:', 'https:'])[0],
  };
  return Object.freeze(config);
}
