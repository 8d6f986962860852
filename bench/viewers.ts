/**
 * `npm run bench -- viewers`: what each extra viewer costs a camera. `p2pd serve`, one
 * `p2pd device` (ffmpeg testsrc → VP8, one encode shared by every viewer: src/device/testVideo.ts)
 * with `--max-viewers 10`, and Node apps (werift, in this process) joining one by one up to ten
 * (four in the short form), all on direct
 * paths. At each count it measures, over the same window, the CPU of the device's Node process
 * (packetizing, SRTP, ICE for every viewer) and of its ffmpeg encoder (shared: it should not grow),
 * and checks that every viewer is still receiving frames. An eleventh viewer gets DEVICE_BUSY.
 *
 * The ceiling in the same run is the encoder itself: ffmpeg's CPU is the cost of the picture, the
 * Node process's growth per viewer the cost of sending it once more.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHs256Signer } from '../src/auth/token.ts';
import type { AppConnection } from '../src/sdk/app.ts';
import { isSdkError } from '../src/sdk/errors.ts';
import { connect } from '../src/sdk/node.ts';
import { ROOT, childPids, cpuSeconds, start, waitFor, untilHealthy, type Started } from './lib/proc.ts';

const HOST = '127.0.0.1';
const JWT = 'bench-viewers-secret';
const DEVICE = 'bench-viewers-cam';
/** The device's ffmpeg: a descendant whose command line is ffmpeg's. */
function findFfmpeg(pid: number): number | undefined {
  for (const c of childPids(pid)) {
    if (readFileSync(`/proc/${c}/cmdline`, 'utf8').split('\0')[0]?.endsWith('ffmpeg')) return c;
    const deeper = findFfmpeg(c);
    if (deeper !== undefined) return deeper;
  }
  return undefined;
}

interface Row { viewers: number; deviceCpu: number; ffmpegCpu: number; framesPerViewer: number[] }

export async function run({ short }: { short: boolean }): Promise<void> {
  const windowSec = short ? 2 : 6;
  // Ten in the full run (the managed services' limit); the short form CI runs stops at four.
  const MAX_VIEWERS = short ? 4 : 10;
  const counts = short ? [1, 2, 4] : [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const signer = createHs256Signer(JWT);
  const started: Started[] = [];
  const conns: AppConnection[] = [];
  try {
    const port = 23000 + Math.floor(Math.random() * 5000);
    started.push(start(process.execPath, [join(ROOT, 'bin/p2pd.js'), 'serve', '--listen', HOST, '--port', String(port), '--http', `${HOST}:${port + 1}`,
      '--mqtt', `${HOST}:${port + 2}`, '--workers', '1', '--jwt-secret', JWT, '--log-level', 'warn'], { quiet: true }));
    const server = `http://${HOST}:${port + 1}`;
    await untilHealthy(server, 30_000);
    const device = start(process.execPath, [join(ROOT, 'bin/p2pd.js'), 'device', '--id', DEVICE, '--server', server, '--size', '640x360', '--fps', '30',
      '--bitrate-kbps', '600', '--max-viewers', String(MAX_VIEWERS)], { env: { P2PD_TOKEN: await signer.sign({ sub: DEVICE, role: 'device' }) }, quiet: true });
    started.push(device);
    const token = await signer.sign({ sub: 'bench-viewer', role: 'app', devices: [DEVICE] });
    const join1 = async (): Promise<AppConnection> => connect({ server, token, deviceId: DEVICE, iceTransportPolicy: 'direct', timeoutMs: 30_000 });
    await waitFor(async () => {
      try {
        conns.push(await join1());
        return true;
      } catch {
        return false;
      }
    }, 60_000, 'the device to come online and take a first viewer');
    const devicePid = device.child.pid as number;
    await waitFor(() => findFfmpeg(devicePid) !== undefined, 30_000, 'the device\'s encoder');
    const ffmpegPid = findFfmpeg(devicePid) as number;

    const rows: Row[] = [];
    for (const n of counts) {
      while (conns.length < n) conns.push(await join1());
      // Every viewer playing before the window opens (its first frames, from the device's GOP cache).
      await waitFor(async () => (await Promise.all(conns.map(async (c) => (await c.getStats()).framesReceived))).every((f) => f >= 10),
        60_000, `all ${n} viewers receiving frames`);
      const frames0 = await Promise.all(conns.map(async (c) => (await c.getStats()).framesReceived));
      const [d0, f0, t0] = [cpuSeconds(devicePid), cpuSeconds(ffmpegPid), performance.now()];
      await sleep(windowSec * 1000);
      const [d1, f1, t1] = [cpuSeconds(devicePid), cpuSeconds(ffmpegPid), performance.now()];
      const frames1 = await Promise.all(conns.map(async (c) => (await c.getStats()).framesReceived));
      const wall = (t1 - t0) / 1000;
      const fps = frames1.map((f, i) => (f - (frames0[i] as number)) / wall);
      const stalled = fps.filter((f) => f < 1).length;
      if (stalled > 0) throw new Error(`${stalled} of ${n} viewers received no frames in ${windowSec} s`);
      rows.push({ viewers: n, deviceCpu: (100 * (d1 - d0)) / wall, ffmpegCpu: (100 * (f1 - f0)) / wall, framesPerViewer: fps });
    }

    let busy = 'not refused';
    try {
      const extra = await join1();
      conns.push(extra);
    } catch (err) {
      busy = isSdkError(err) ? `${err.code} ${err.serverCode ?? ''}`.trim() : String(err);
    }

    const base = rows[0] as Row;
    const last = rows[rows.length - 1] as Row;
    const perViewer = rows.length > 1 ? (last.deviceCpu - base.deviceCpu) / (last.viewers - base.viewers) : NaN;
    process.stdout.write('\ncamera CPU per viewer: p2pd device (VP8 640x360@30, 600 kbit/s), one shared encode, direct paths on loopback\n');
    process.stdout.write('| viewers | device process CPU % | ffmpeg encoder CPU % | frames/s per viewer (min–max) |\n|---|---|---|---|\n');
    for (const r of rows) {
      const lo = Math.min(...r.framesPerViewer);
      const hi = Math.max(...r.framesPerViewer);
      process.stdout.write(`| ${r.viewers} | ${r.deviceCpu.toFixed(1)} | ${r.ffmpegCpu.toFixed(1)} | ${lo.toFixed(1)}–${hi.toFixed(1)} |\n`);
    }
    process.stdout.write(`\neach extra viewer: +${perViewer.toFixed(2)} % of a core in the device process; the encoder stays one `
      + `(${base.ffmpegCpu.toFixed(1)} % with 1 viewer, ${last.ffmpegCpu.toFixed(1)} % with ${last.viewers}); `
      + `viewer ${MAX_VIEWERS + 1}: ${busy}\n`);
    if (busy !== 'DEVICE_ERROR DEVICE_BUSY') throw new Error(`viewer ${MAX_VIEWERS + 1} should get DEVICE_BUSY, got ${busy}`);
  } finally {
    await Promise.allSettled(conns.map((c) => c.close()));
    for (const s of started.reverse()) await s.stop();
  }
}
