/**
 * The lab's web app: Debian's Chromium, started inside the app site's namespace (a wrapper runs
 * it under `ip netns exec`; playwright drives it over a pipe, which crosses namespaces), opened on
 * the viewer page p2pd serves, signed in with an app token. Each attempt calls the page's
 * `p2pdViewer.connectTo` as the device list's button does and reads what the viewer shows.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { SetupPhases } from '../src/sdk/setupTimeline.ts';
import type { AttemptResult, VideoSteps } from './connectivity.ts';
import { SERVER_URL, appToken } from './service.ts';
import type { Namespace } from './sites.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  // Host candidates as addresses (no mDNS names the camera cannot resolve), as the e2e tests do.
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--disable-background-timer-throttling', '--disable-renderer-backgrounding', '--autoplay-policy=no-user-gesture-required',
];

export interface BrowserApp {
  attempt(deviceId: string): Promise<AttemptResult>;
  close(): Promise<void>;
}

export async function openBrowserApp(host: Namespace, spki: string): Promise<BrowserApp> {
  const dir = mkdtempSync(join(tmpdir(), 'p2pd-lab-chromium-'));
  const wrapper = join(dir, 'chromium-in-netns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${host.name} ${CHROMIUM} "$@"\n`);
  chmodSync(wrapper, 0o755);
  let context: BrowserContext | undefined;
  try {
    context = await chromium.launchPersistentContext(join(dir, 'profile'), { executablePath: wrapper, headless: true, args: [...ARGS, `--ignore-certificate-errors-spki-list=${spki}`], timeout: 60_000 });
    const page: Page = context.pages()[0] ?? await context.newPage();
    // The lab reads each connection's inbound video stats (runAttempt): keep the page's peer connections.
    await page.addInitScript(() => {
      const Native = window.RTCPeerConnection;
      const pcs: RTCPeerConnection[] = [];
      (window as unknown as { labPeerConnections: RTCPeerConnection[] }).labPeerConnections = pcs;
      window.RTCPeerConnection = class extends Native {
        constructor(config?: RTCConfiguration) {
          super(config);
          pcs.push(this);
        }
      } as typeof RTCPeerConnection;
    });
    await page.goto(`${SERVER_URL}/#token=${await appToken('lab-viewer')}`, { timeout: 30_000 });
    await page.waitForFunction(() => (window as unknown as { p2pdViewer?: { state: string } }).p2pdViewer !== undefined, undefined, { timeout: 30_000 });
    const ctx = context;
    return {
      attempt: (deviceId) => page.evaluate(runAttempt, deviceId),
      async close() {
        await ctx.close().catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await context?.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Runs in the page: one connection, its first video frame, a few RTT samples, then disconnect. */
async function runAttempt(deviceId: string): Promise<AttemptResult> {
  interface Viewer {
    state: string; path?: 'direct' | 'relay'; setupMs?: number; setupPhases?: SetupPhases; error?: { code: string };
    stats?: { rttMs?: number }; natType?: string; online: string[];
    connectTo(id: string): Promise<void>; disconnect(): Promise<void>; finalPath(): Promise<'direct' | 'relay' | undefined>;
  }
  const v = (window as unknown as { p2pdViewer: Viewer }).p2pdViewer;
  // Signed in and told the camera is online (MQTT presence): what a person waits for to click.
  const signInDeadline = performance.now() + 30_000;
  while (!v.online.includes(deviceId) && performance.now() < signInDeadline) await new Promise((r) => setTimeout(r, 50));
  const started = performance.now();
  const video = document.querySelector('video') as HTMLVideoElement;
  const frame = new Promise<number | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), 30_000);
    const check = (): void => {
      if (video.srcObject) video.requestVideoFrameCallback(() => { clearTimeout(timer); resolve(performance.now()); });
      else setTimeout(check, 10);
    };
    check();
  });
  // The video's own steps, from the newest peer connection's inbound-rtp stats (docs/lab.md "First
  // frame"); the viewer may make that connection ahead of the click, for the next offer.
  const pcs = (window as unknown as { labPeerConnections?: RTCPeerConnection[] }).labPeerConnections ?? [];
  const steps: VideoSteps = {};
  let sampling = true;
  const sample = async (): Promise<void> => {
    const pc = pcs[pcs.length - 1];
    if (pc === undefined) return;
    const report = await pc.getStats();
    report.forEach((s: Record<string, unknown>) => {
      if (s.type !== 'inbound-rtp' || s.kind !== 'video') return;
      const at = Math.round(performance.now() - started);
      const n = (k: string): number => (typeof s[k] === 'number' ? s[k] as number : 0);
      if (steps.firstPacketMs === undefined && n('packetsReceived') > 0) steps.firstPacketMs = at;
      if (steps.firstFrameReceivedMs === undefined && n('framesReceived') > 0) steps.firstFrameReceivedMs = at;
      if (steps.firstDecodedMs === undefined && n('framesDecoded') > 0) steps.firstDecodedMs = at;
      Object.assign(steps, {
        framesReceived: n('framesReceived'), framesDecoded: n('framesDecoded'), keyFramesDecoded: n('keyFramesDecoded'),
        framesDropped: n('framesDropped'), pliCount: n('pliCount'), nackCount: n('nackCount'), packetsLost: n('packetsLost'),
      });
    });
  };
  const sampler = (async () => { while (sampling) { await sample().catch(() => undefined); await new Promise((r) => setTimeout(r, 20)); } })();
  await v.connectTo(deviceId);
  if (v.state !== 'connected') {
    sampling = false;
    await v.disconnect();
    return { ok: false, error: v.error?.code ?? v.state };
  }
  const frameAt = await Promise.race([frame, new Promise<undefined>((r) => setTimeout(r, 10_000))]);
  sampling = false;
  await sampler;
  await sample().catch(() => undefined);
  const rttDeadline = performance.now() + 5000;
  while (v.stats?.rttMs === undefined && performance.now() < rttDeadline) await new Promise((r) => setTimeout(r, 50));
  const result: AttemptResult = {
    ok: true, path: (await v.finalPath()) ?? v.path, setupMs: v.setupMs, rttMs: v.stats?.rttMs,
    ...(v.setupPhases === undefined ? {} : { phases: v.setupPhases }),
    firstFrameMs: frameAt === undefined ? undefined : Math.round(frameAt - started),
    ...(v.natType === undefined ? {} : { natType: v.natType }),
    ...(steps.framesReceived === undefined ? {} : { video: steps }),
  };
  await v.disconnect();
  video.srcObject = null;
  return result;
}
