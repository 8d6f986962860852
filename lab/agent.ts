/**
 * The lab's Node app (the SDK under `p2pd connect`), run inside the app site's namespace:
 * `node bin/run.js lab/agent.ts SERVER TOKEN DEVICE ATTEMPTS`. One process makes every attempt
 * of a cell in turn, so a Node start-up is not counted as setup, and prints one JSON line per
 * attempt: ok, path, setupMs (connect() to a working path, the SDK's own figure), firstFrameMs
 * (connect() to the first complete video frame), rttMs (median of data-channel pings), natType.
 * Like the web viewer (whose page opens the broker connection when the user signs in) and like an
 * app, it holds one broker connection for all its attempts and hands it to connect(): a setup
 * starts from an app that is already online (docs/lab.md "What setup measures").
 */
import { mqttUrlFor, normalizeServer } from '../src/sdk/http.ts';
import { SignalingClient, connect, isSdkError, readTokenClaims, warmUp } from '../src/sdk/node.ts';
import type { RemoteTrack } from '../src/sdk/rtc.ts';

const [server, token, deviceId, attemptsRaw] = process.argv.slice(2);
if (!server || !token || !deviceId) {
  process.stderr.write('usage: agent.ts SERVER TOKEN DEVICE [ATTEMPTS]\n');
  process.exit(2);
}
const attempts = Number(attemptsRaw ?? '1');
const FRAME_WAIT_MS = 10_000;

/** Resolves at the first complete frame of a video track, or undefined after `ms`. */
function firstFrame(onTrack: (cb: (t: RemoteTrack) => void) => void, ms: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    onTrack((t) => {
      if (t.kind !== 'video' || !t.onFrame) return;
      const off = t.onFrame(() => { off(); clearTimeout(timer); resolve(Date.now()); });
    });
  });
}

// As an app does when it starts (docs/client.md "Setup time"): werift's one-time work and the
// HTTP connection are done while the broker connection comes up, not in the first attempt (the
// web viewer's page has its HTTP connection from loading the page).
void warmUp(server);
const signaling = await SignalingClient.open({
  url: mqttUrlFor(normalizeServer(server)), id: readTokenClaims(token).sub, role: 'app', token,
});

for (let i = 0; i < attempts; i++) {
  const started = Date.now();
  let trackListener: ((t: RemoteTrack) => void) | undefined;
  const pendingTracks: RemoteTrack[] = [];
  const frame = firstFrame((cb) => { trackListener = cb; for (const t of pendingTracks) cb(t); }, 20_000 + FRAME_WAIT_MS);
  try {
    const conn = await connect({ server, token, deviceId, signaling, timeoutMs: 20_000, pingMs: 500 });
    for (const t of conn.tracks) (trackListener ?? ((x) => pendingTracks.push(x)))(t);
    conn.on('track', (t) => (trackListener ?? ((x) => pendingTracks.push(x)))(t));
    const frameAt = await Promise.race([frame, new Promise<undefined>((r) => setTimeout(r, FRAME_WAIT_MS))]);
    const rtts: number[] = [];
    for (let k = 0; k < 3; k++) rtts.push(await conn.ping(3000));
    rtts.sort((a, b) => a - b);
    const natType = (conn as unknown as { natType?: string }).natType;
    process.stdout.write(`${JSON.stringify({
      ok: true, path: await conn.finalPath(), setupMs: conn.setupMs, phases: conn.setup.phases, rttMs: rtts[1],
      firstFrameMs: frameAt === undefined ? undefined : frameAt - started,
      ...(natType === undefined ? {} : { natType }),
    })}\n`);
    await conn.close('done');
  } catch (err) {
    process.stdout.write(`${JSON.stringify({ ok: false, error: isSdkError(err) ? err.code : String(err), elapsedMs: Date.now() - started })}\n`);
  }
}
await signaling.close();
// werift keeps sockets of closed peers open for a while.
process.exit(0);
