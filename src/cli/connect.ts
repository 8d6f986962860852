/**
 * `p2pd connect --device SN [--server URL] [--token T] [--watch] [--json]`: the command-line
 * app peer. Connects to a device, prints the path (direct/relay), setup time and RTT (the median
 * of a few data-channel pings), says bye and exits; `--watch` keeps the connection and prints
 * its stats every second until Ctrl-C. Exit status 0 on success; on failure one line with the
 * error code (DEVICE_OFFLINE, ICE_FAILED, TIMEOUT, …) and status 2.
 */
import { formatHelp, type OptionSpec } from '../config/options.ts';
import { getFlag, getString, parseOptions } from '../config/parse.ts';
import { conflict, invalidValue, missingValue } from '../errors.ts';
import { parseInteger } from '../config/values.ts';
import { CLIENT_ID_PATTERN } from '../auth/token.ts';
import type { AppConnection, ConnectionStats } from '../sdk/app.ts';
import { normalizeServer } from '../sdk/http.ts';
import { percentile } from '../sdk/stats.ts';
import { tokenOrDevToken } from './device.ts';

const OPTIONS: readonly OptionSpec[] = [
  { name: 'device', kind: 'value', metavar: 'SN', help: 'the device to connect to' },
  { name: 'server', kind: 'value', metavar: 'URL', defaultText: 'http://localhost:8080', help: 'the service\'s HTTP base URL' },
  { name: 'token', kind: 'value', metavar: 'T', defaultText: 'env P2PD_TOKEN, else a development token', help: 'an app token that allows the device' },
  { name: 'mqtt-url', kind: 'value', metavar: 'URL', defaultText: '{server}/mqtt', help: 'another MQTT broker' },
  { name: 'relay', kind: 'flag', help: 'only relayed paths (TURN), as behind a symmetric NAT' },
  { name: 'direct', kind: 'flag', help: 'only direct paths: no TURN at either end' },
  { name: 'pings', kind: 'value', metavar: 'N', defaultText: '5', help: 'data-channel pings for the RTT' },
  { name: 'timeout-ms', kind: 'value', metavar: 'MS', defaultText: '20000', help: 'the whole setup' },
  { name: 'nat-type', kind: 'value', metavar: 'TYPE', defaultText: 'detected (RFC 5780 or the mapping test)', help: 'this side\'s NAT type, reported to the service (e.g. from p2pd nat-type)' },
  { name: 'watch', kind: 'flag', help: 'stay connected and print stats every second until Ctrl-C' },
  { name: 'json', kind: 'flag', help: 'JSON output (one object; with --watch one per line)' },
];

export const CONNECT_HELP = formatHelp('connect', 'A command-line app peer: connects to a device and prints path (direct/relay), setup time and RTT.', OPTIONS);

const round = (n: number | undefined, digits = 1): number | undefined => (n === undefined ? undefined : Math.round(n * 10 ** digits) / 10 ** digits);

function statsLine(s: ConnectionStats): string {
  const parts = [
    `${new Date(s.at).toISOString().slice(11, 19)}`,
    `${s.state}`,
    `path ${s.path ?? '?'}`,
    `rtt ${round(s.rttMs) ?? '?'} ms`,
    `video ${round(s.bitrateKbps, 0) ?? '?'} kbit/s`,
    `frames ${s.framesReceived}`,
  ];
  if (s.packetsLost > 0) parts.push(`lost ${s.packetsLost}`);
  if (s.iceRestarts > 0) parts.push(`ice restarts ${s.iceRestarts}`);
  return parts.join('  ');
}

export async function connect(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const raw = parseOptions(argv, OPTIONS, env);
  const deviceId = getString(raw, 'device');
  if (deviceId === undefined) throw missingValue('device');
  if (!CLIENT_ID_PATTERN.test(deviceId)) throw invalidValue('device', deviceId, 'a device id');
  const server = normalizeServer(getString(raw, 'server') ?? 'http://localhost:8080');
  const pings = parseInteger('pings', getString(raw, 'pings') ?? '5', 1, 1000);
  const timeoutMs = parseInteger('timeout-ms', getString(raw, 'timeout-ms') ?? '20000', 1000, 600_000);
  const json = getFlag(raw, 'json');
  const watch = getFlag(raw, 'watch');
  const mqttUrl = getString(raw, 'mqtt-url');
  const natType = getString(raw, 'nat-type');
  const relay = getFlag(raw, 'relay');
  const direct = getFlag(raw, 'direct');
  if (relay && direct) throw conflict('--relay and --direct exclude each other');

  // Loaded here, not at the top: `p2pd serve` shares the command table and needs no WebRTC stack.
  const { connect: sdkConnect, warmUp } = await import('../sdk/node.ts');
  void warmUp(server);
  const token = await tokenOrDevToken(getString(raw, 'token'), server, { role: 'app', devices: [deviceId] });
  const conn: AppConnection = await sdkConnect({
    server, token, deviceId, timeoutMs,
    iceTransportPolicy: relay ? 'relay' : direct ? 'direct' : 'all',
    ...(mqttUrl ? { mqttUrl } : {}),
    ...(natType ? { natType } : {}),
  });

  // With --watch --json the path is a line of its own: the one connected on, then each change
  // (a relayed path can give way to a direct one that comes up later, docs/client.md).
  if (watch && json) {
    const printPath = (p: string | undefined): void => { process.stdout.write(`${JSON.stringify({ event: 'path', path: p ?? null })}\n`); };
    printPath(conn.path);
    conn.on('path', printPath);
  }
  const rtts: number[] = [];
  for (let i = 0; i < pings; i++) rtts.push(await conn.ping());
  rtts.sort((a, b) => a - b);
  const stats = await conn.getStats();
  const summary = {
    device: deviceId,
    sessionId: conn.sessionId,
    path: conn.path ?? null,
    setupMs: conn.setupMs ?? null,
    rttMs: round(percentile(rtts, 50), 2) ?? null,
    rttMinMs: round(rtts[0], 2) ?? null,
    rttMaxMs: round(rtts[rtts.length - 1], 2) ?? null,
    local: stats.localCandidate ?? null,
    remote: stats.remoteCandidate ?? null,
    codec: conn.deviceCodec ?? null,
  };
  if (json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    process.stdout.write([
      `device:   ${deviceId}`,
      `session:  ${conn.sessionId}`,
      `path:     ${summary.path ?? '?'} (${summary.local ?? '?'} ↔ ${summary.remote ?? '?'})`,
      `setup:    ${summary.setupMs ?? '?'} ms`,
      `rtt:      ${summary.rttMs ?? '?'} ms (median of ${pings} data-channel pings; min ${summary.rttMinMs}, max ${summary.rttMaxMs})`,
      '',
    ].join('\n'));
  }

  if (watch) {
    await new Promise<void>((resolve, reject) => {
      conn.on('stats', (s) => process.stdout.write(json ? `${JSON.stringify({ event: 'stats', ...s })}\n` : `${statsLine(s)}\n`));
      conn.on('path', (p) => { if (!json) process.stdout.write(`path changed: ${p}\n`); });
      conn.on('signaling', (s) => { if (!json) process.stdout.write(`signaling ${s}\n`); });
      conn.on('error', (err) => reject(err));
      conn.on('close', ({ error }) => (error ? reject(error) : resolve()));
      const stop = (): void => { void conn.close('user'); };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  } else {
    await conn.close('done');
  }
  // werift keeps sockets of closed peers for a while; nothing is left to do.
  process.exit(0);
}
