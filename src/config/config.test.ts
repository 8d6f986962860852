import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from './config.ts';
import { P2pdError } from '../errors.ts';

function refuses(argv: string[], code: string, env: NodeJS.ProcessEnv = {}): void {
  assert.throws(() => loadConfig(argv, env), (err: unknown) => err instanceof P2pdError && err.code === code);
}

test('defaults follow docs/reference.md "Commands"', () => {
  const c = loadConfig([]);
  assert.deepEqual([...c.roles], ['stun', 'turn', 'signal', 'api']);
  assert.equal(c.listen, '0.0.0.0');
  assert.equal(c.port, 3478);
  assert.equal(c.tls, undefined);
  assert.equal(c.alt, undefined);
  assert.deepEqual(c.relayPorts, { min: 49152, max: 65535 });
  assert.equal(c.realm, 'p2pd');
  assert.equal(c.maxBps, 2_000_000);
  assert.deepEqual(c.http, { host: '0.0.0.0', port: 8080 });
  assert.deepEqual(c.mqtt, { host: '0.0.0.0', port: 1883 });
  assert.equal(c.region, 'default');
  assert.equal(c.sessionTtlSec, 86400);
  assert.equal(c.logLevel, 'info');
  assert.equal(c.authSecretGenerated, true);
  assert.ok(c.authSecret.length >= 32);
  assert.ok(Object.isFrozen(c));
});

test('every option parses from the command line and from P2PD_* variables', () => {
  const c = loadConfig(
    ['--listen', '127.0.0.1', '--port=3479', '--alt-ip', '127.0.0.2', '--user', 'a:b', '--user', 'c:d:e', '--allow-peer', '10.0.0.0/8', '--secure-stun'],
    { P2PD_REGION: 'eu-west', P2PD_REDIS_URL: 'redis://a:6379,redis://b:6379', P2PD_MAX_BPS: '0', P2PD_PORT: '9999' },
  );
  assert.equal(c.port, 3479, 'the command line wins over the environment');
  assert.deepEqual(c.alt, { ip: '127.0.0.2', port: 3480 });
  assert.deepEqual(c.users, [{ name: 'a', password: 'b' }, { name: 'c', password: 'd:e' }]);
  assert.equal(c.allowPeers[0]?.prefix, 8);
  assert.equal(c.secureStun, true);
  assert.equal(c.region, 'eu-west');
  assert.deepEqual(c.redisUrls, ['redis://a:6379', 'redis://b:6379']);
  assert.equal(c.maxBps, 0);
  assert.equal(c.externalIp, '127.0.0.1', 'external ip defaults to the listen address');
});

test('refuses unknown options, bad values and contradictions with stable codes', () => {
  refuses(['--nope'], 'CONFIG_UNKNOWN_OPTION');
  refuses(['serve'], 'CONFIG_UNKNOWN_OPTION');
  refuses(['--port'], 'CONFIG_MISSING_VALUE');
  refuses(['--port', '70000'], 'CONFIG_INVALID_VALUE');
  refuses(['--port', '12a'], 'CONFIG_INVALID_VALUE');
  refuses(['--listen', 'example.com'], 'CONFIG_INVALID_VALUE');
  refuses(['--relay-ports', '6000-5000'], 'CONFIG_INVALID_VALUE');
  refuses(['--allow-peer', '10.0.0.0/33'], 'CONFIG_INVALID_VALUE');
  refuses(['--user', 'nopass'], 'CONFIG_INVALID_VALUE');
  refuses(['--roles', 'stun,bogus'], 'CONFIG_INVALID_VALUE');
  refuses(['--log-level', 'loud'], 'CONFIG_INVALID_VALUE');
  refuses(['--redis-url', 'http://x'], 'CONFIG_INVALID_VALUE');
  refuses(['--secure-stun=yes'], 'CONFIG_UNKNOWN_OPTION');
  refuses(['--tls-cert', '/etc/hostname'], 'CONFIG_CONFLICT');
  refuses(['--tls-host', 'turn.example.com'], 'CONFIG_CONFLICT');
  refuses(['--alt-port', '4000'], 'CONFIG_CONFLICT');
  refuses(['--listen', '127.0.0.1', '--alt-ip', '127.0.0.1'], 'CONFIG_CONFLICT');
  refuses([], 'CONFIG_INVALID_VALUE', { P2PD_WORKERS: 'many' });
  refuses([], 'CONFIG_INVALID_VALUE', { P2PD_SECURE_STUN: 'maybe' });
});

test('--relay-ip takes several addresses, comma-separated or repeated; each relay address is told as its --external-ip pair', () => {
  assert.deepEqual(loadConfig(['--listen', '10.0.0.1']).relayIps, ['10.0.0.1'], 'the default: --listen, alone');
  assert.deepEqual(loadConfig(['--listen', '127.0.0.1']).relayIps, ['127.0.0.1', '::1'], 'IPv6 ::1 beside a loopback IPv4 relay');
  assert.deepEqual(loadConfig(['--relay-ip', '10.0.0.1,10.0.0.2', '--relay-ip', '10.0.0.3']).relayIps, ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
  assert.deepEqual(loadConfig([], { P2PD_RELAY_IP: '10.0.0.1, 10.0.0.2' }).relayIps, ['10.0.0.1', '10.0.0.2']);
  assert.deepEqual(loadConfig(['--relay-ip', '127.0.0.1,127.0.0.2']).relayIps, ['127.0.0.1', '127.0.0.2', '::1']);
  assert.deepEqual(loadConfig(['--relay-ip', '10.0.0.1,fd00::1,10.0.0.2', '--relay-ip6', 'fd00::9']).relayIps, ['10.0.0.1', '10.0.0.2', 'fd00::1'],
    'IPv4 first, then the IPv6 ones of --relay-ip, which --relay-ip6 does not join');
  const nat = loadConfig(['--relay-ip', '10.0.0.1,10.0.0.2', '--external-ip', '203.0.113.1/10.0.0.1', '--external-ip', '203.0.113.2/10.0.0.2']);
  assert.equal(nat.externalIp, '0.0.0.0', 'no plain --external-ip: it defaults to --listen');
  assert.deepEqual(nat.externalIpPairs, [{ publicIp: '203.0.113.1', privateIp: '10.0.0.1' }, { publicIp: '203.0.113.2', privateIp: '10.0.0.2' }]);
  const plainAndPair = loadConfig(['--listen', '10.0.0.1', '--relay-ip', '10.0.0.1,10.0.0.2', '--external-ip', '203.0.113.1,203.0.113.2/10.0.0.2']);
  assert.equal(plainAndPair.externalIp, '203.0.113.1');
  refuses(['--relay-ip', '10.0.0.1,10.0.0.2', '--external-ip', '203.0.113.1'], 'CONFIG_CONFLICT');
  refuses(['--relay-ip', '10.0.0.1,10.0.0.2', '--external-ip', '10.0.0.2/10.0.0.1'], 'CONFIG_CONFLICT');
  refuses(['--relay-ip', '0.0.0.0,10.0.0.2'], 'CONFIG_CONFLICT');
  refuses(['--relay-ip', '10.0.0.1,10.0.0.1'], 'CONFIG_INVALID_VALUE');
  refuses(['--relay-ip', '10.0.0.1,nope'], 'CONFIG_INVALID_VALUE');
  refuses(['--external-ip', '203.0.113.1/fd00::1'], 'CONFIG_INVALID_VALUE');
  refuses(['--external-ip', '203.0.113.1/0.0.0.0'], 'CONFIG_INVALID_VALUE');
  refuses(['--external-ip', '203.0.113.1', '--external-ip', '203.0.113.2'], 'CONFIG_CONFLICT');
  refuses(['--external-ip', '203.0.113.1/10.0.0.1,203.0.113.2/10.0.0.1'], 'CONFIG_CONFLICT');
});

test('an invalid password is never echoed back', () => {
  try {
    loadConfig(['--user', 'secret-without-colon']);
    assert.fail('should throw');
  } catch (err) {
    assert.ok(err instanceof P2pdError && err.code.startsWith('CONFIG_'));
    assert.ok(!err.message.includes('secret-without-colon'));
  }
});

test('session and cluster options (issue 4) parse, with defaults', () => {
  const d = loadConfig(['--port', '3479']);
  assert.equal(d.sweepIntervalSec, 300);
  assert.equal(d.heartbeatIntervalSec, 5);
  assert.equal(d.turnCapacityBps, 0);
  assert.equal(d.geoipDb, undefined);
  assert.equal(d.regionMapFile, undefined);
  assert.match(d.nodeId, /^[A-Za-z0-9][A-Za-z0-9._-]*-3479$/);
  const c = loadConfig(['--sweep-interval', '0.5', '--heartbeat-interval=0.2', '--node-id', 'turn-eu-1', '--turn-capacity-bps', '900000000'], { P2PD_REGION_MAP: '/etc/hostname' });
  assert.equal(c.sweepIntervalSec, 0.5);
  assert.equal(c.heartbeatIntervalSec, 0.2);
  assert.equal(c.nodeId, 'turn-eu-1');
  assert.equal(c.turnCapacityBps, 900_000_000);
  assert.equal(c.regionMapFile, '/etc/hostname');
  refuses(['--sweep-interval', '0'], 'CONFIG_INVALID_VALUE');
  refuses(['--heartbeat-interval', 'soon'], 'CONFIG_INVALID_VALUE');
  refuses(['--node-id', 'a/b'], 'CONFIG_INVALID_VALUE');
  refuses(['--geoip-db', '/nonexistent/GeoLite2-City.mmdb'], 'CONFIG_INVALID_VALUE');
});

test('exposure defaults are closed: dev tokens for loopback, bounds on sessions, permissions, rates and pre-login MQTT', () => {
  const c = loadConfig([]);
  assert.equal(c.devTokens, 'loopback');
  assert.deepEqual(c.denyPeers, []);
  assert.equal(c.maxPermissions, 128);
  assert.equal(c.maxChannels, 128);
  assert.equal(c.principalQuota, 200);
  assert.equal(c.maxSessionsPerApp, 100);
  assert.equal(c.rateLimitToken, 20);
  assert.equal(c.rateLimitSource, 100);
  assert.equal(c.httpTimeoutSec, 10);
  assert.equal(c.brokerHookSecret, undefined);
  assert.equal(c.mqttMaxPacketBytes, 262144);
  assert.equal(c.mqttPreauthPerSource, 32);
  assert.equal(c.mqttMaxConnections, undefined, 'from the open-file limit');
  assert.equal(c.mqttMaxLoginsInFlight, 64);
  assert.equal(c.mqttMaxLoginsWaiting, 4096);
  assert.equal(c.mqttLoginWaitSec, 4);
  assert.equal(c.tcpIdleTimeoutSec, 30);
  assert.equal(c.tlsHandshakeTimeoutSec, 10);
  assert.equal(c.tcpMaxPerSource, 256);
  const open = loadConfig(['--dev-tokens', 'lan', '--deny-peer', '203.0.113.0/24', '--deny-peer', '2001:db8::/32'], { P2PD_MAX_SESSIONS_PER_APP: '0' });
  assert.equal(open.devTokens, 'lan');
  assert.deepEqual(open.denyPeers.map((d) => d.text), ['203.0.113.0/24', '2001:db8::/32']);
  assert.equal(open.maxSessionsPerApp, 0);
  assert.equal(loadConfig(['--mqtt-max-logins-in-flight', '0']).mqttMaxLoginsInFlight, 0, '0: unlimited');
  assert.equal(loadConfig([], { P2PD_MQTT_MAX_LOGINS_IN_FLIGHT: '2' }).mqttMaxLoginsInFlight, 2);
  refuses(['--mqtt-max-logins-in-flight', '-1'], 'CONFIG_INVALID_VALUE');
  assert.equal(loadConfig(['--mqtt-max-connections', '0']).mqttMaxConnections, 0, '0: unlimited');
  assert.equal(loadConfig([], { P2PD_MQTT_MAX_CONNECTIONS: '5000' }).mqttMaxConnections, 5000);
  refuses(['--mqtt-max-connections', '-1'], 'CONFIG_INVALID_VALUE');
  refuses(['--mqtt-max-connections', 'many'], 'CONFIG_INVALID_VALUE');
  assert.equal(loadConfig(['--mqtt-max-logins-waiting', '0', '--mqtt-login-wait', '0.5']).mqttMaxLoginsWaiting, 0, '0: none wait');
  assert.equal(loadConfig([], { P2PD_MQTT_LOGIN_WAIT: '0.5' }).mqttLoginWaitSec, 0.5);
  refuses(['--mqtt-login-wait', '0'], 'CONFIG_INVALID_VALUE');
  refuses(['--mqtt-max-logins-waiting', '-1'], 'CONFIG_INVALID_VALUE');
  refuses(['--dev-tokens', 'everyone'], 'CONFIG_INVALID_VALUE');
  refuses(['--deny-peer', '10.0.0.0/33'], 'CONFIG_INVALID_VALUE');
  refuses(['--mqtt-max-packet', '10'], 'CONFIG_INVALID_VALUE');
});

test('--tls-host names the TLS listener: a DNS name or an IP, only with a certificate', () => {
  const tls = ['--tls-cert', '/etc/hostname', '--tls-key', '/etc/hostname', '--tls-port', '443'];
  assert.deepEqual(loadConfig([...tls, '--tls-host', 'turn.example.com']).tls,
    { port: 443, certFile: '/etc/hostname', keyFile: '/etc/hostname', host: 'turn.example.com' });
  assert.equal(loadConfig([...tls, '--tls-host', '2001:db8::1']).tls?.host, '2001:db8::1');
  assert.equal(loadConfig(tls).tls?.host, undefined, 'absent: the turns: URL names the advertised address');
  refuses([...tls, '--tls-host', 'bad_name.example'], 'CONFIG_INVALID_VALUE');
  refuses([...tls, '--tls-host', 'https://turn.example.com'], 'CONFIG_INVALID_VALUE');
});

test('usage retention and sleeping cameras (issue 14) parse, with defaults', () => {
  const d = loadConfig([]);
  assert.equal(d.usageRetentionDays, 35);
  assert.equal(d.wakeTimeoutSec, 0);
  assert.equal(d.wakeWebhook, undefined);
  const c = loadConfig(['--usage-retention', '400', '--wake-timeout', '7.5'], { P2PD_WAKE_WEBHOOK: 'https://push.example.com/wake' });
  assert.equal(c.usageRetentionDays, 400);
  assert.equal(c.wakeTimeoutSec, 7.5);
  assert.equal(c.wakeWebhook, 'https://push.example.com/wake');
  refuses(['--usage-retention', '0'], 'CONFIG_INVALID_VALUE');
  refuses(['--wake-timeout', '301'], 'CONFIG_INVALID_VALUE');
  refuses(['--wake-timeout', '-1'], 'CONFIG_INVALID_VALUE');
  refuses(['--wake-webhook', 'ftp://push.example.com/'], 'CONFIG_INVALID_VALUE');
  refuses(['--wake-webhook', 'not a url'], 'CONFIG_INVALID_VALUE');
});

test('rotation: a previous secret parses only beside the current one, and the HS256 one not with --jwt-public-key', () => {
  const c = loadConfig(['--auth-secret', 'new', '--auth-secret-previous', 'old'], { P2PD_JWT_SECRET: 'jnew', P2PD_JWT_SECRET_PREVIOUS: 'jold' });
  assert.equal(c.authSecret, 'new');
  assert.equal(c.authSecretPrevious, 'old');
  assert.equal(c.jwtSecretPrevious, 'jold');
  assert.equal(loadConfig([]).authSecretPrevious, undefined);
  refuses(['--auth-secret-previous', 'old'], 'CONFIG_CONFLICT');
  refuses(['--jwt-secret-previous', 'old'], 'CONFIG_CONFLICT');
  refuses(['--jwt-secret', 'new', '--jwt-secret-previous', 'old', '--jwt-public-key', '/etc/hostname'], 'CONFIG_CONFLICT');
});
