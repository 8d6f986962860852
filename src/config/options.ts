/**
 * The options of `p2pd serve` (docs/reference.md "Commands"): one table used for parsing, environment
 * variables (`P2PD_<NAME>`) and `--help`. Values stay raw strings here; config.ts types them.
 */
export interface OptionSpec {
  /** Long name without dashes, e.g. `redis-url`. */
  readonly name: string;
  /** `value`: takes one value; `flag`: boolean switch; `list`: repeatable (env: comma-separated). */
  readonly kind: 'value' | 'flag' | 'list';
  readonly help: string;
  /** Shown in --help; the typed default lives in config.ts. */
  readonly defaultText?: string;
  readonly metavar?: string;
}

export const SERVE_OPTIONS: readonly OptionSpec[] = [
  { name: 'config', kind: 'value', metavar: 'FILE', help: 'YAML file of these options, keyed by their names; options and P2PD_* variables win over it (docs/operations.md)' },
  { name: 'roles', kind: 'value', metavar: 'LIST', defaultText: 'stun,turn,signal,api', help: 'roles this process runs' },
  { name: 'listen', kind: 'value', metavar: 'IP', defaultText: '0.0.0.0', help: 'address of the STUN/TURN listeners (UDP and TCP)' },
  { name: 'port', kind: 'value', metavar: 'N', defaultText: '3478', help: 'STUN/TURN port, UDP and TCP' },
  { name: 'tls-port', kind: 'value', metavar: 'N', defaultText: '5349', help: 'TURN over TLS port (on when cert and key are given)' },
  { name: 'tls-cert', kind: 'value', metavar: 'FILE', help: 'TLS certificate (PEM); reread on SIGHUP and when the file changes' },
  { name: 'tls-key', kind: 'value', metavar: 'FILE', help: 'TLS private key (PEM); reread with the certificate' },
  { name: 'tls-host', kind: 'value', metavar: 'NAME', defaultText: 'the advertised address', help: 'host of the turns: URL sessions get: the DNS name (or IP) --tls-cert is issued for' },
  { name: 'alt-ip', kind: 'value', metavar: 'IP', help: 'second address for RFC 5780 (OTHER-ADDRESS, CHANGE-REQUEST)' },
  { name: 'alt-port', kind: 'value', metavar: 'N', defaultText: 'port+1', help: 'second port for RFC 5780' },
  { name: 'external-ip', kind: 'list', metavar: 'IP|PUBLIC/PRIVATE', defaultText: 'listen address', help: 'address advertised to clients; PUBLIC/PRIVATE pairs (comma-separated or repeated) name what each local address, e.g. each --relay-ip, is told as' },
  { name: 'relay-ip', kind: 'list', metavar: 'IP[,IP…]', defaultText: 'listen address', help: 'address relay sockets bind to; several (comma-separated or repeated) each have their own --relay-ports range' },
  { name: 'relay-ports', kind: 'value', metavar: 'MIN-MAX', defaultText: '49152-65535', help: 'relay port range (of each --relay-ip)' },
  { name: 'realm', kind: 'value', metavar: 'R', defaultText: 'p2pd', help: 'TURN realm' },
  { name: 'auth-secret', kind: 'value', metavar: 'S', defaultText: 'random, logged as a warning', help: 'TURN REST shared secret (coturn static-auth-secret compatible)' },
  { name: 'auth-secret-previous', kind: 'value', metavar: 'S', help: 'the --auth-secret before a rotation: TURN REST credentials minted with it are still accepted; new ones use --auth-secret (docs/operations.md)' },
  { name: 'user', kind: 'list', metavar: 'NAME:PASS', help: 'static long-term TURN user (repeatable)' },
  { name: 'user-quota', kind: 'value', metavar: 'N', defaultText: '100', help: 'TURN allocations per user (0 = unlimited)' },
  { name: 'max-allocations', kind: 'value', metavar: 'N', defaultText: '10000', help: 'TURN allocations on this node (0 = unlimited)' },
  { name: 'secure-stun', kind: 'flag', help: 'Binding requests must carry valid credentials' },
  { name: 'allow-peer', kind: 'list', metavar: 'CIDR', help: 'allow relaying to a range denied by default (repeatable)' },
  { name: 'max-bps', kind: 'value', metavar: 'N', defaultText: '2000000', help: 'per-allocation relay bandwidth, bits/s (0 = unlimited)' },
  { name: 'relay-ip6', kind: 'value', metavar: 'IP', defaultText: '::1 when --relay-ip is loopback, else none', help: 'IPv6 address relay sockets bind to (REQUESTED-ADDRESS-FAMILY IPv6) when --relay-ip names no IPv6 address; none = IPv6 relays refused with 440' },
  { name: 'max-lifetime', kind: 'value', metavar: 'S', defaultText: '3600', help: 'longest TURN allocation lifetime a client may ask for, seconds' },
  { name: 'permission-lifetime', kind: 'value', metavar: 'S', defaultText: '300', help: 'TURN permission lifetime, seconds (RFC 8656: 300)' },
  { name: 'channel-lifetime', kind: 'value', metavar: 'S', defaultText: '600', help: 'TURN channel binding lifetime, seconds (RFC 8656: 600)' },
  { name: 'nonce-lifetime', kind: 'value', metavar: 'S', defaultText: '600', help: 'TURN nonce lifetime, seconds; older nonces get 438 Stale Nonce' },
  { name: 'udp-io', kind: 'value', metavar: 'auto|batch|dgram', defaultText: 'auto', help: 'UDP listener I/O: batched recvmmsg/sendmmsg (the udpbatch addon) or Node dgram; auto = batch where built' },
  { name: 'workers', kind: 'value', metavar: 'N', defaultText: 'number of cores', help: 'processes sharing the UDP/TCP ports' },
  { name: 'http', kind: 'value', metavar: 'IP:PORT', defaultText: '0.0.0.0:8080', help: 'HTTP API, /metrics, MQTT over WebSocket at /mqtt, web pages' },
  { name: 'mqtt', kind: 'value', metavar: 'IP:PORT', defaultText: '0.0.0.0:1883', help: 'embedded MQTT broker (TCP)' },
  { name: 'mqtt-url', kind: 'value', metavar: 'URL', help: 'external broker (Mosquitto, EMQX) instead of the embedded one' },
  { name: 'mqtt-dynsec', kind: 'flag', help: "with --mqtt-url: write clients' rights into Mosquitto's dynamic-security plugin (docs/signaling.md)" },
  { name: 'redis-url', kind: 'value', metavar: 'URL[,URL…]', help: 'Redis (or Redis Cluster: several URLs) instead of memory' },
  { name: 'region', kind: 'value', metavar: 'NAME', defaultText: 'default', help: "this node's region" },
  { name: 'jwt-secret', kind: 'value', metavar: 'S', defaultText: 'random, logged as a warning', help: 'key for client tokens (HS256)' },
  { name: 'jwt-secret-previous', kind: 'value', metavar: 'S', help: 'the --jwt-secret before a rotation: tokens signed with it are still accepted (docs/operations.md)' },
  { name: 'jwt-public-key', kind: 'value', metavar: 'FILE', help: 'ES256 public key (PEM) for client tokens' },
  { name: 'session-ttl', kind: 'value', metavar: 'S', defaultText: '86400', help: 'session time to live, seconds' },
  { name: 'node-id', kind: 'value', metavar: 'ID', defaultText: 'hostname-port', help: "this node's id in the cluster (unique per node)" },
  { name: 'sweep-interval', kind: 'value', metavar: 'S', defaultText: '300', help: 'seconds between sweeps for stale sessions (stale: no keepalive for 3 intervals)' },
  { name: 'heartbeat-interval', kind: 'value', metavar: 'S', defaultText: '5', help: 'seconds between cluster heartbeats (a node silent for 3 drops out)' },
  { name: 'drain-grace', kind: 'value', metavar: 'S', defaultText: '0', help: 'on SIGTERM, seconds the relays already here keep flowing while new allocations are sent to another TURN node (300 Try Alternate)' },
  { name: 'turn-capacity-bps', kind: 'value', metavar: 'N', defaultText: '0', help: 'relay bandwidth, bits/s, past which this node takes no new sessions (0 = unlimited)' },
  { name: 'geoip-db', kind: 'value', metavar: 'FILE', help: "MaxMind-format GeoIP database (City or Country) to place callers in regions" },
  { name: 'region-map', kind: 'value', metavar: 'FILE', help: 'JSON region table: {"cidrs": {"CIDR": "region"}, "countries": {"DE": "region"}, "continents": {"EU": "region"}}' },
  { name: 'dev-tokens', kind: 'value', metavar: 'loopback|lan|off', defaultText: 'loopback', help: 'who may call POST /v1/dev/token when no --jwt-secret is given: loopback callers only, any caller (logged as a warning), or no one' },
  { name: 'deny-peer', kind: 'list', metavar: 'CIDR', help: 'deny relaying to a range besides the default deny-list (repeatable; wins over --allow-peer)' },
  { name: 'max-permissions', kind: 'value', metavar: 'N', defaultText: '128', help: 'TURN permissions per allocation; CreatePermission past it gets 508' },
  { name: 'max-channels', kind: 'value', metavar: 'N', defaultText: '128', help: 'TURN channel bindings per allocation; ChannelBind past it gets 508' },
  { name: 'principal-quota', kind: 'value', metavar: 'N', defaultText: '200', help: "TURN allocations per principal (a token's sub) across all its sessions (0 = unlimited)" },
  { name: 'max-sessions-per-app', kind: 'value', metavar: 'N', defaultText: '100', help: 'open sessions one app may hold; more get 429 TOO_MANY_SESSIONS (0 = unlimited)' },
  { name: 'max-viewers', kind: 'value', metavar: 'N', defaultText: '10', help: 'open sessions (viewers) one device may have; more get 409 DEVICE_BUSY (0 = unlimited)' },
  { name: 'rate-limit-token', kind: 'value', metavar: 'N', defaultText: '20', help: 'HTTP API requests per second per token (burst 2N; 0 = unlimited); past it 429 RATE_LIMITED' },
  { name: 'rate-limit-source', kind: 'value', metavar: 'N', defaultText: '100', help: 'HTTP API requests per second per source IP (burst 2N; 0 = unlimited); past it 429 RATE_LIMITED' },
  { name: 'http-timeout', kind: 'value', metavar: 'S', defaultText: '10', help: 'seconds a client has to send the headers and the body of an HTTP request' },
  { name: 'broker-hook-secret', kind: 'value', metavar: 'S', help: 'secret an external broker sends (header x-p2pd-hook-secret) to POST /v1/mqtt/auth; without it only loopback callers are answered' },
  { name: 'mqtt-max-packet', kind: 'value', metavar: 'BYTES', defaultText: '262144', help: 'largest MQTT packet accepted after login (CONNECT is capped at 16 KiB); larger closes the connection (messages above 64 KiB are refused with MESSAGE_TOO_LARGE first)' },
  { name: 'signal-url', kind: 'list', metavar: 'URL', defaultText: 'ws://<advertised address>:<http port>/mqtt and mqtt://…:<mqtt port> with the embedded broker, none with --mqtt-url', help: 'MQTT URL clients reach this node\'s signaling at (ws, wss, mqtt, mqtts; repeatable): listed in session answers and GET /v1/signaling, nearest first' },
  { name: 'mqtt-fabric', kind: 'value', metavar: 'redis|off', defaultText: 'redis', help: "with --redis-url and the embedded broker: the brokers of all nodes are one over Redis (off: each node's broker serves only its own clients)" },
  { name: 'mqtt-preauth-per-source', kind: 'value', metavar: 'N', defaultText: '32', help: 'MQTT connections one source IP may hold before they log in' },
  { name: 'mqtt-max-connections', kind: 'value', metavar: 'N', defaultText: 'the open-file limit less 1/8 (at least 256)', help: 'MQTT connections (TCP and WebSocket) this node holds; a login beyond them is refused with CONNACK 3 (server unavailable) and its client moves to its next URL, so that a full node keeps the files its Redis connections need (0 = unlimited)' },
  { name: 'mqtt-max-logins-in-flight', kind: 'value', metavar: 'N', defaultText: '64', help: 'MQTT logins (CONNECT to CONNACK) this node runs at once; a login beyond them waits its turn (--mqtt-max-logins-waiting, --mqtt-login-wait), else is refused with CONNACK 3 (server unavailable) and its client retries after its backoff (0 = unlimited)' },
  { name: 'mqtt-max-logins-waiting', kind: 'value', metavar: 'N', defaultText: '4096', help: 'MQTT logins (token checked) that may wait for one of --mqtt-max-logins-in-flight; a CONNECT beyond them is refused with CONNACK 3 at once (0 = none wait)' },
  { name: 'mqtt-login-wait', kind: 'value', metavar: 'SEC', defaultText: '4', help: 'the longest an MQTT login waits for one of --mqtt-max-logins-in-flight before CONNACK 3' },
  { name: 'tcp-idle-timeout', kind: 'value', metavar: 'S', defaultText: '30', help: 'STUN/TURN TCP and TLS connections without an allocation are closed after this many idle seconds; any connection that leaves our answers unread this long is closed' },
  { name: 'tls-handshake-timeout', kind: 'value', metavar: 'S', defaultText: '10', help: 'seconds a STUN/TURN TLS client has to finish its handshake' },
  { name: 'tcp-max-per-source', kind: 'value', metavar: 'N', defaultText: '256', help: 'STUN/TURN TCP and TLS connections one source IP may hold at once, per worker (0 = unlimited)' },
  { name: 'usage-retention', kind: 'value', metavar: 'D', defaultText: '35', help: 'days relay usage per app and device (GET /v1/usage) is kept after its hour ends' },
  { name: 'wake-timeout', kind: 'value', metavar: 'S', defaultText: '0', help: 'seconds a session to an offline (sleeping) device waits for it to wake before DEVICE_OFFLINE (0 = answer DEVICE_OFFLINE at once)' },
  { name: 'wake-webhook', kind: 'value', metavar: 'URL', help: "with --wake-timeout: POST a wake request for a sleeping device to this URL (the operator's push service)" },
  { name: 'log-level', kind: 'value', metavar: 'L', defaultText: 'info', help: 'pino level: fatal, error, warn, info, debug, trace, silent' },
];

/** `redis-url` → `P2PD_REDIS_URL`. */
export const envName = (optionName: string): string => `P2PD_${optionName.toUpperCase().replace(/-/g, '_')}`;

export function formatHelp(command: string, summary: string, options: readonly OptionSpec[]): string {
  const rows = options.map((o) => {
    const left = `--${o.name}${o.kind === 'flag' ? '' : ` ${o.metavar ?? 'VALUE'}`}`;
    const def = o.defaultText ? ` (default: ${o.defaultText})` : '';
    return `  ${left.padEnd(28)} ${o.help}${def}`;
  });
  return `usage: p2pd ${command} [options]\n\n${summary}\n\noptions (each also as env P2PD_<NAME>, e.g. P2PD_REDIS_URL):\n${rows.join('\n')}\n`;
}
