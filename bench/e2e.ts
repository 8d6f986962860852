/**
 * `npm run bench -- e2e`: the end-to-end numbers of a viewing session on this machine, direct
 * and forced through TURN (relay only):
 * - connection setup (session request → working path), P50/P95, Node app (werift);
 * - data-channel RTT (ping → the device's pong), P50/P95;
 * - video frame latency: a timestamp carried from the device (the moment a frame left its
 *   encoder, sent with the frame's RTP timestamp on the data channel) to the frame presented by
 *   Chromium's decoder (requestVideoFrameCallback), P50/P95; and to the frame's last packet
 *   arriving at a Node app (no decoder there).
 * Target (the design): P95 < 500 ms end to end; on loopback it is far less.
 *
 * Everything real: `p2pd serve`, `p2pd device` (ffmpeg testsrc → VP8 640x360@30), werift apps,
 * the web viewer in headless Chromium when /usr/bin/chromium exists.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHs256Signer } from '../src/auth/token.ts';
import type { AppConnection } from '../src/sdk/app.ts';
import { connect } from '../src/sdk/node.ts';
import { chromiumAvailable, launchChromium } from '../test/helpers/chromium.ts';
import { ROOT, percentile, start, waitFor, untilHealthy, type Started } from './lib/proc.ts';

const HOST = '127.0.0.1';
const JWT = 'bench-e2e-secret';
const DEVICE = 'bench-cam';

type Path = 'direct' | 'relay';
interface Samples { setup: number[]; rtt: number[]; nodeFrame: number[]; browserFrame: number[]; browserSetup: number[] }

const fmt = (xs: readonly number[], digits = 1): string =>
  (xs.length === 0 ? '—' : `${percentile(xs, 50).toFixed(digits)} / ${percentile(xs, 95).toFixed(digits)}`);

async function connectOnce(server: string, token: string, path: Path): Promise<AppConnection> {
  return connect({ server, token, deviceId: DEVICE, iceTransportPolicy: path, timeoutMs: 20_000 });
}

async function measureNode(server: string, token: string, path: Path, opts: { setups: number; pings: number; frameSec: number }, out: Samples): Promise<void> {
  for (let i = 0; i < opts.setups; i++) {
    const c = await connectOnce(server, token, path);
    if (c.path !== path) throw new Error(`asked for ${path}, got ${c.path}`);
    out.setup.push(c.setupMs as number);
    await c.close();
  }
  const c = await connectOnce(server, token, path);
  try {
    for (let i = 0; i < 5; i++) await c.ping(); // warm up
    for (let i = 0; i < opts.pings; i++) {
      out.rtt.push(await c.ping());
      await sleep(10);
    }
    c.on('frame', (f) => out.nodeFrame.push(f.latencyMs));
    c.enableFrameTimestamps();
    await sleep(opts.frameSec * 1000);
  } finally {
    await c.close();
  }
}

async function measureBrowser(server: string, token: string, path: Path, opts: { frameSec: number; setups: number }, out: Samples): Promise<void> {
  const browser = await launchChromium();
  try {
    for (let i = 0; i < opts.setups; i++) {
      const page = await browser.context.newPage();
      await page.goto(`${server}/#token=${token}&device=${DEVICE}${path === 'relay' ? '&relay=1' : '&direct=1'}`);
      type V = { state: string; path?: string; setupMs?: number; latencies: number[]; stats?: { framesDecoded?: number }; error?: { code: string } };
      const read = (): Promise<V> => page.evaluate(() => {
        const v = (window as unknown as { p2pdViewer: V }).p2pdViewer;
        return { state: v.state, path: v.path, setupMs: v.setupMs, latencies: v.latencies, stats: v.stats ? { ...v.stats } : undefined, error: v.error };
      });
      await waitFor(async () => {
        const v = await read();
        if (v.state === 'failed') throw new Error(`viewer failed: ${v.error?.code}`);
        return v.state === 'connected' && (v.stats?.framesDecoded ?? 0) > 0;
      }, 30_000, 'the viewer to play');
      const v = await read();
      if (v.path !== path) throw new Error(`viewer asked for ${path}, got ${v.path}`);
      out.browserSetup.push(v.setupMs as number);
      if (i === opts.setups - 1) {
        // The viewer keeps the last 90 frames: sample them every 2 s for the whole window.
        const end = Date.now() + opts.frameSec * 1000;
        while (Date.now() < end) {
          await sleep(2000);
          out.browserFrame.push(...(await read()).latencies.slice(-60));
        }
      }
      await page.click('#disconnect');
      await page.close();
    }
  } finally {
    await browser.close();
  }
}

export async function run(opts: { short: boolean }): Promise<void> {
  const setups = opts.short ? 4 : 20;
  const pings = opts.short ? 50 : 300;
  const frameSec = opts.short ? 4 : 15;
  const port = 25_610 + Math.floor(Math.random() * 50) * 4; // below the ephemeral range
  const server = `http://${HOST}:${port + 1}`;
  const signer = createHs256Signer(JWT);
  const started: Started[] = [];
  try {
    started.push(start(process.execPath, [join(ROOT, 'bin/p2pd.js'), 'serve', '--listen', HOST, '--port', String(port), '--http', `${HOST}:${port + 1}`,
      '--mqtt', `${HOST}:${port + 2}`, '--workers', '1', '--jwt-secret', JWT, '--auth-secret', 'bench-e2e-turn', '--allow-peer', '127.0.0.0/8',
      '--relay-ports', '26000-26999', '--log-level', 'warn']));
    await untilHealthy(server, 20_000);
    started.push(start(process.execPath, [join(ROOT, 'bin/p2pd.js'), 'device', '--id', DEVICE, '--server', server, '--size', '640x360', '--fps', '30', '--bitrate-kbps', '600'],
      { env: { P2PD_TOKEN: await signer.sign({ sub: DEVICE, role: 'device' }) } }));
    const token = await signer.sign({ sub: 'bench-app', role: 'app', devices: [DEVICE] });
    await waitFor(async () => {
      try {
        await (await connectOnce(server, token, 'direct')).close();
        return true;
      } catch {
        return false;
      }
    }, 30_000, 'the device to come online');

    const results = new Map<Path, Samples>();
    const browser = chromiumAvailable();
    for (const path of ['direct', 'relay'] as const) {
      const s: Samples = { setup: [], rtt: [], nodeFrame: [], browserFrame: [], browserSetup: [] };
      results.set(path, s);
      process.stdout.write(`  ${path}: Node app (${setups} setups, ${pings} pings, ${frameSec} s of frames)…\n`);
      await measureNode(server, token, path, { setups, pings, frameSec }, s);
      if (browser) {
        process.stdout.write(`  ${path}: Chromium viewer…\n`);
        await measureBrowser(server, token, path, { frameSec, setups: opts.short ? 1 : 3 }, s);
      }
    }

    const d = results.get('direct') as Samples;
    const r = results.get('relay') as Samples;
    const row = (name: string, a: number[], b: number[]): string => `  ${name.padEnd(44)} ${fmt(a).padStart(16)} ${fmt(b).padStart(16)}\n`;
    process.stdout.write(`\nend to end on loopback: p2pd serve + p2pd device (VP8 640x360@30, 600 kbit/s), ms, P50 / P95\n`);
    process.stdout.write(`  ${''.padEnd(44)} ${'direct'.padStart(16)} ${'relay (TURN)'.padStart(16)}\n`);
    process.stdout.write(row('connection setup, Node app', d.setup, r.setup));
    if (browser) process.stdout.write(row('connection setup, Chromium viewer', d.browserSetup, r.browserSetup));
    process.stdout.write(row('data-channel RTT, Node app', d.rtt, r.rtt));
    process.stdout.write(row('video latency: encoder → frame received, Node', d.nodeFrame, r.nodeFrame));
    if (browser) process.stdout.write(row('video latency: encoder → frame decoded, Chromium', d.browserFrame, r.browserFrame));
    else process.stdout.write('  (no Chromium at /usr/bin/chromium: decoded-frame latency not measured)\n');
    const worst = Math.max(...[d, r].flatMap((x) => [percentile(x.browserFrame.length ? x.browserFrame : x.nodeFrame, 95)]));
    process.stdout.write(`  end-to-end video latency P95 ${worst.toFixed(1)} ms (target < 500 ms): ${worst < 500 ? 'ok' : 'MISSED'}\n`);
    process.stdout.write(`  samples: setups ${d.setup.length}+${r.setup.length}, pings ${d.rtt.length}+${r.rtt.length}, frames (Node) ${d.nodeFrame.length}+${r.nodeFrame.length}, frames (Chromium) ${d.browserFrame.length}+${r.browserFrame.length}\n`);
  } finally {
    for (const s of started.reverse()) await s.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await run({ short: process.argv.includes('--short') });
  process.exit(0);
}
