/**
 * The whole path a person takes, in a real browser: `p2pd serve`, a `p2pd device` (the simulated
 * camera, ffmpeg → VP8 → werift), and the web viewer in headless Chromium. The viewer decodes
 * the device's video (`framesDecoded` grows) — once with the viewer's "direct only" switch (no
 * TURN at either end, so the path cannot come out relayed however slow the machine) and once
 * forced through TURN (relay only). Screenshots of the viewer are kept in artifacts/.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import type { Page } from 'playwright-core';
import { createHs256Signer } from '../../src/auth/token.ts';
import { chromiumAvailable, launchChromium, type Chromium } from '../helpers/chromium.ts';
import { startDevice, type DeviceProcess } from '../helpers/device.ts';
import { ROOT, startP2pd, type P2pdProcess } from '../helpers/p2pd.ts';

const JWT = 'e2e-browser-secret';
const signer = createHs256Signer(JWT);
const ARTIFACTS = `${ROOT}artifacts`;

interface ViewerState {
  state: string;
  path: string | undefined;
  setupMs: number | undefined;
  latencyMs: number | undefined;
  error: { code: string; message: string } | undefined;
  stats: { framesDecoded?: number; bitrateKbps?: number; rttMs?: number; frameWidth?: number } | undefined;
}

const read = (page: Page): Promise<ViewerState> => page.evaluate(() => {
  const v = (window as unknown as { p2pdViewer: ViewerState }).p2pdViewer;
  return { state: v.state, path: v.path, setupMs: v.setupMs, latencyMs: v.latencyMs, error: v.error, stats: v.stats ? { ...v.stats } : undefined };
});

async function waitFor(page: Page, what: string, check: (s: ViewerState) => boolean, timeoutMs: number): Promise<ViewerState> {
  const end = Date.now() + timeoutMs;
  let last: ViewerState | undefined;
  while (Date.now() < end) {
    last = await read(page);
    if (last.error && last.state === 'failed') throw new Error(`viewer failed while waiting for ${what}: ${last.error.code} ${last.error.message}`);
    if (check(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}; viewer: ${JSON.stringify(last)}`);
}

// No suite-wide timeout: every step below has its own bound (and the runner's --test-timeout
// guards a hang); a sum of them ran out on a busy machine while no step was stuck.
describe('web viewer in headless Chromium ↔ p2pd device', { skip: chromiumAvailable() ? false : 'no Chromium at /usr/bin/chromium (set CHROMIUM_PATH)' }, () => {
  let p2pd: P2pdProcess;
  let device: DeviceProcess;
  let browser: Chromium;
  let appToken: string;

  before(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    // Loopback (and this machine's own address) must be relayable for the TURN-only run.
    p2pd = await startP2pd({ args: ['--jwt-secret', JWT, '--auth-secret', 'e2e-browser-turn', '--allow-peer', '127.0.0.0/8'] });
    device = await startDevice({ server: p2pd.httpUrl, id: 'cam-web', token: await signer.sign({ sub: 'cam-web', role: 'device' }), args: ['--size', '480x270', '--fps', '20', '--bitrate-kbps', '400'] });
    appToken = await signer.sign({ sub: 'viewer-1', role: 'app', devices: ['*'] });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await device?.stop();
    await p2pd?.stop();
  });

  async function watch(policy: 'all' | 'relay' | 'direct', deviceId = 'cam-web'): Promise<{ page: Page; state: ViewerState }> {
    const page = await browser.context.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    await page.goto(`${p2pd.httpUrl}/#token=${appToken}${policy === 'all' ? '' : `&${policy}=1`}`);
    // The device list comes from MQTT presence; picking it is what a person does.
    const button = page.locator(`button[data-device="${deviceId}"]`);
    await button.waitFor({ timeout: 15_000 });
    await button.click();
    try {
      const state = await waitFor(page, 'connected', (s) => s.state === 'connected', 25_000);
      return { page, state };
    } catch (err) {
      throw new Error(`${(err as Error).message}\nbrowser console:\n${logs.join('\n')}\ndevice:\n${device.output().slice(-2000)}`);
    }
  }

  /** The natType each peer's keepalives carried, from the session's trace (bounded polling). */
  async function waitForNatTypes(sessionId: string, peers: readonly string[]): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    for (let i = 0; i < 50 && found.size < peers.length; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 200));
      const r = await fetch(`${p2pd.httpUrl}/v1/sessions/${sessionId}/trace`, { headers: { authorization: `Bearer ${appToken}` } });
      assert.equal(r.status, 200);
      const { events } = (await r.json()) as { events: Array<{ what: string; detail: { from?: string; natType?: string } }> };
      for (const e of events) if (e.what === 'keepalive' && e.detail.from && e.detail.natType) found.set(e.detail.from, e.detail.natType);
    }
    return found;
  }

  async function assertVideoPlays(page: Page, size = [480, 270]): Promise<ViewerState> {
    const first = await waitFor(page, 'decoded frames', (s) => (s.stats?.framesDecoded ?? 0) > 5, 20_000);
    const later = await waitFor(page, 'more decoded frames', (s) => (s.stats?.framesDecoded ?? 0) >= (first.stats?.framesDecoded ?? 0) + 10, 10_000);
    // The <video> element renders it too, at the device's size.
    const rendered = await page.evaluate(() => {
      const v = document.querySelector('video') as HTMLVideoElement;
      return { w: v.videoWidth, h: v.videoHeight, t: v.currentTime };
    });
    assert.deepEqual([rendered.w, rendered.h], size);
    assert.ok(rendered.t > 0, 'video time advances');
    return later;
  }

  test('the viewer watches the device over a direct path', async () => {
    const { page, state } = await watch('direct');
    assert.equal(state.path, 'direct');
    assert.ok(state.setupMs !== undefined && state.setupMs > 0 && state.setupMs < 20_000, `setup ${state.setupMs}`);
    const playing = await assertVideoPlays(page);
    // Measured, not judged: the latency target lives in `npm run bench -- e2e`, never in a timed test.
    const withLatency = await waitFor(page, 'video latency and rtt', (s) => s.latencyMs !== undefined && s.stats?.rttMs !== undefined, 10_000);
    assert.ok(Number.isFinite(withLatency.latencyMs) && (withLatency.latencyMs as number) >= 0, `video latency ${withLatency.latencyMs} ms`);
    assert.ok((playing.stats?.bitrateKbps ?? 0) > 20, `bitrate ${playing.stats?.bitrateKbps}`);
    await page.screenshot({ path: `${ARTIFACTS}/viewer-direct.png` });
    const viewer = await device.next('viewer');
    assert.equal(viewer.path, 'direct');

    // The viewer found its NAT type from srflx candidates (natDetectBrowser.ts) and reported it
    // in a keepalive, as the device did over UDP. Loopback has no NAT: no srflx, every server answered.
    const natTypes = await waitForNatTypes(String(viewer.sessionId), ['viewer-1', 'cam-web']);
    assert.equal(natTypes.get('viewer-1'), 'cone');
    assert.equal(natTypes.get('cam-web'), 'cone', 'one STUN server and no OTHER-ADDRESS: the mapping alone');

    // An ICE restart (what the SDK does when the path fails) keeps the picture going.
    await page.evaluate(() => (window as unknown as { p2pdViewer: { restartIce(): Promise<void> } }).p2pdViewer.restartIce());
    const after = await waitFor(page, 'connected after the ICE restart', (s) => s.state === 'connected', 10_000);
    await waitFor(page, 'frames after the ICE restart', (s) => (s.stats?.framesDecoded ?? 0) >= (after.stats?.framesDecoded ?? 0) + 10, 10_000);
    await page.click('#disconnect');
    await waitFor(page, 'idle', (s) => s.state === 'idle', 5000);
    await page.close();
  });

  test('the viewer watches the device through TURN when only relayed paths are allowed', async () => {
    const { page, state } = await watch('relay');
    assert.equal(state.path, 'relay');
    await assertVideoPlays(page);
    await waitFor(page, 'stats on the relayed path', (s) => s.stats?.rttMs !== undefined, 10_000);
    await page.screenshot({ path: `${ARTIFACTS}/viewer-relay.png` });
    await page.close();
  });

  test('an H.264 camera plays too', async () => {
    const h264 = await startDevice({ server: p2pd.httpUrl, id: 'cam-h264', token: await signer.sign({ sub: 'cam-h264', role: 'device' }), args: ['--codec', 'h264', '--size', '320x240', '--fps', '15'] });
    try {
      const { page } = await watch('all', 'cam-h264');
      await assertVideoPlays(page, [320, 240]);
      await page.close();
    } finally {
      await h264.stop();
    }
  });
});
