/**
 * `p2pd device --id SN [--server URL] [--token T]`: a simulated camera. Comes online over MQTT,
 * answers every app that connects (several at once) with a live test video (ffmpeg's testsrc,
 * VP8 or H.264) and a data channel that answers ping and echo. Without a token, in the embedded
 * development default, it asks the server for a development token (POST /v1/dev/token).
 */
import { formatHelp, type OptionSpec } from '../config/options.ts';
import { getFlag, getString, parseOptions } from '../config/parse.ts';
import { invalidValue, missingValue } from '../errors.ts';
import { parseInteger } from '../config/values.ts';
import { CLIENT_ID_PATTERN } from '../auth/token.ts';
import type { TestVideoSource } from '../device/testVideo.ts';
import { SdkError, isSdkError } from '../sdk/errors.ts';
import { DEFAULT_MAX_VIEWERS } from '../sdk/viewerRoster.ts';
import { devToken, normalizeServer } from '../sdk/http.ts';
import type { VideoCodec } from '../sdk/rtc.ts';

const OPTIONS: readonly OptionSpec[] = [
  { name: 'id', kind: 'value', metavar: 'SN', help: 'the device id (its serial number; the token\'s subject)' },
  { name: 'server', kind: 'value', metavar: 'URL', defaultText: 'http://localhost:8080', help: 'the service\'s HTTP base URL' },
  { name: 'token', kind: 'value', metavar: 'T', defaultText: 'env P2PD_TOKEN, else a development token', help: 'the device token' },
  { name: 'mqtt-url', kind: 'value', metavar: 'URL', defaultText: '{server}/mqtt', help: 'another MQTT broker' },
  { name: 'codec', kind: 'value', metavar: 'vp8|h264', defaultText: 'vp8', help: 'video codec' },
  { name: 'size', kind: 'value', metavar: 'WxH', defaultText: '640x360', help: 'video size' },
  { name: 'fps', kind: 'value', metavar: 'N', defaultText: '30', help: 'frames per second' },
  { name: 'bitrate-kbps', kind: 'value', metavar: 'N', defaultText: '600', help: 'video bitrate' },
  { name: 'no-video', kind: 'flag', help: 'data channel only (no ffmpeg)' },
  { name: 'max-viewers', kind: 'value', metavar: 'N', defaultText: '10', help: 'viewers at once; more get DEVICE_BUSY (the service refuses past its own --max-viewers first)' },
  { name: 'punch-ttl', kind: 'value', metavar: 'N', defaultText: '2', help: 'IP TTL of the hole-punching datagram (docs/client.md "Hole punching"); 0: no punching' },
  { name: 'json', kind: 'flag', help: 'print events as JSON lines' },
];

export const DEVICE_HELP = formatHelp('device', 'A simulated camera: registers, answers offers, streams a test video and a data channel.', OPTIONS);

/** The token given, or a development token from a server running the embedded default. */
export async function tokenOrDevToken(given: string | undefined, server: string, req: { role: 'app' | 'device'; sub?: string; devices?: string[] }): Promise<string> {
  if (given !== undefined && given !== '') return given;
  try {
    return await devToken(server, req);
  } catch (err) {
    if (isSdkError(err) && (err.serverCode === 'HTTP_404' || err.serverCode === 'NOT_FOUND')) {
      throw new SdkError('AUTH_FAILED', `no token: pass --token or set P2PD_TOKEN (${server} issues no development tokens: it runs with --jwt-secret)`);
    }
    throw err;
  }
}

export async function device(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const raw = parseOptions(argv, OPTIONS, env);
  const id = getString(raw, 'id');
  if (id === undefined) throw missingValue('id');
  if (!CLIENT_ID_PATTERN.test(id)) throw invalidValue('id', id, 'letters, digits and . _ : @ - (at most 128)');
  const server = normalizeServer(getString(raw, 'server') ?? 'http://localhost:8080');
  const codecRaw = (getString(raw, 'codec') ?? 'vp8').toLowerCase();
  if (codecRaw !== 'vp8' && codecRaw !== 'h264') throw invalidValue('codec', codecRaw, 'vp8 or h264');
  const codec: VideoCodec = codecRaw === 'vp8' ? 'VP8' : 'H264';
  const size = getString(raw, 'size') ?? '640x360';
  const m = /^(\d{2,4})x(\d{2,4})$/.exec(size);
  if (!m) throw invalidValue('size', size, 'WIDTHxHEIGHT, e.g. 640x360');
  const width = parseInteger('size', m[1] as string, 16, 3840);
  const height = parseInteger('size', m[2] as string, 16, 2160);
  const fps = parseInteger('fps', getString(raw, 'fps') ?? '30', 1, 60);
  const bitrateKbps = parseInteger('bitrate-kbps', getString(raw, 'bitrate-kbps') ?? '600', 50, 20_000);
  const maxViewers = parseInteger('max-viewers', getString(raw, 'max-viewers') ?? String(DEFAULT_MAX_VIEWERS), 1, 1000);
  const punchTtl = parseInteger('punch-ttl', getString(raw, 'punch-ttl') ?? '2', 0, 255);
  const json = getFlag(raw, 'json');
  const print = (event: string, fields: Record<string, unknown>, text: string): void => {
    process.stdout.write(json ? `${JSON.stringify({ event, at: Date.now(), ...fields })}\n` : `${text}\n`);
  };

  const givenToken = getString(raw, 'token');
  const token = await tokenOrDevToken(givenToken, server, { role: 'device', sub: id });
  // A development token is renewed the way it was got; a given token is the operator's to renew.
  const tokenProvider = givenToken ? undefined : (): Promise<string> => devToken(server, { role: 'device', sub: id });
  // Loaded here, not at the top: `p2pd serve` shares the command table and needs no WebRTC stack.
  const [{ serve }, { TestVideoSource }] = await Promise.all([import('../sdk/node.ts'), import('../device/testVideo.ts')]);
  let media: TestVideoSource | undefined;
  if (!getFlag(raw, 'no-video')) {
    media = new TestVideoSource({ codec, width, height, fps, bitrateKbps, onLog: (line) => process.stderr.write(`ffmpeg: ${line}\n`) });
    await media.start();
  }
  const mqttUrl = getString(raw, 'mqtt-url');
  let dev;
  try {
    dev = await serve({ server, token, id, ...(media ? { media } : {}), ...(mqttUrl ? { mqttUrl } : {}), ...(tokenProvider ? { tokenProvider } : {}), maxViewers, punchTtl });
  } catch (err) {
    await media?.stop();
    throw err;
  }
  print('online', { device: id, server, codec: media ? codec : null, size: `${width}x${height}`, fps },
    `device ${id} online at ${server}${media ? `, streaming ${codec} ${width}x${height}@${fps}` : ' (no video)'}; Ctrl-C to stop`);
  dev.on('viewer', (v) => print('viewer', { ...v }, `viewer ${v.appId} connected: session ${v.sessionId}, path ${v.path ?? '?'}, setup ${v.setupMs ?? '?'} ms`));
  dev.on('viewer-closed', (v) => print('viewer-closed', { ...v }, `viewer ${v.appId} left: session ${v.sessionId} (${v.reason})`));
  dev.on('signaling', (s) => print('signaling', { state: s }, s === 'up' ? 'signaling: reconnected' : 'signaling: lost the broker, reconnecting…'));
  dev.on('nat', (natType) => print('nat', { natType }, `NAT type: ${natType}`));
  dev.on('warning', (e) => print('warning', { code: e.code, message: e.message }, `warning: ${e.message} [${e.code}]`));

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      const force = setTimeout(() => process.exit(1), 5000);
      force.unref();
      void dev.close().then(() => media?.stop()).then(() => {
        print('offline', { device: id }, `device ${id} offline`);
        resolve();
        // werift keeps sockets and timers of closed peers for a while; nothing is left to do.
        process.exit(0);
      });
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
