/**
 * The web viewer in headless Chromium on node A, the camera (`p2pd device`) on node B, one broker
 * fabric (docs/signaling.md "One broker across nodes"): two `p2pd serve` share a real Redis, the
 * page is loaded from node A and signals through it, the camera through node B, and the viewer
 * decodes the camera's video over a direct path (the viewer's "direct only" switch, so a slow
 * machine cannot turn it into a relayed one). The Node app stack does the same in e2e-fabric.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { createHs256Signer } from '../../src/auth/token.ts';
import { chromiumAvailable, launchChromium, type Chromium } from '../helpers/chromium.ts';
import { startDevice, type DeviceProcess } from '../helpers/device.ts';
import { startP2pd, type P2pdProcess } from '../helpers/p2pd.ts';
import { REDIS_MISSING, haveRedis, startRedis, type RedisServer } from '../helpers/redis.ts';
import { metricValue } from '../helpers/stunClient.ts';

const JWT = 'e2e-fabric-browser-secret';
const signer = createHs256Signer(JWT);

interface ViewerState {
  state: string;
  path: string | undefined;
  error: { code: string; message: string } | undefined;
  framesDecoded: number;
}

const read = (page: Page): Promise<ViewerState> => page.evaluate(() => {
  const v = (window as unknown as { p2pdViewer: { state: string; path?: string; error?: { code: string; message: string }; stats?: { framesDecoded?: number } } }).p2pdViewer;
  return { state: v.state, path: v.path, error: v.error, framesDecoded: v.stats?.framesDecoded ?? 0 };
});

/** Polls until `check` holds, bounded; a failed viewer ends the wait at once. */
async function until<T>(what: string, get: () => Promise<T>, check: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < end) {
    last = await get();
    const state = last as Partial<ViewerState>;
    if (state.state === 'failed') throw new Error(`viewer failed while waiting for ${what}: ${JSON.stringify(state.error)}`);
    if (check(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
}

const connected = (p: P2pdProcess): Promise<number> => metricValue(p.httpUrl, 'mqtt_clients_connected{');

describe('web viewer on node A ↔ camera on node B, one fabric', {
  skip: !haveRedis() ? REDIS_MISSING : chromiumAvailable() ? false : 'no Chromium at /usr/bin/chromium (set CHROMIUM_PATH)',
}, () => {
  let redis: RedisServer;
  let a: P2pdProcess;
  let b: P2pdProcess;
  let device: DeviceProcess;
  let browser: Chromium;

  before(async () => {
    redis = await startRedis();
    const args = ['--jwt-secret', JWT, '--auth-secret', 'e2e-fabric-browser-turn', '--allow-peer', '127.0.0.0/8', '--redis-url', redis.url];
    [a, b] = await Promise.all([startP2pd({ args }), startP2pd({ args })]);
    device = await startDevice({ server: b.httpUrl, id: 'cam-fw', token: await signer.sign({ sub: 'cam-fw', role: 'device' }), args: ['--size', '320x240', '--fps', '15', '--bitrate-kbps', '300'] });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await device?.stop();
    await Promise.allSettled([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  test('the page from node A lists the camera of node B and plays its video over a direct path', async () => {
    await until('the camera connected to node B', () => connected(b), (n) => n === 1, 15_000);
    assert.equal(await connected(a), 0, 'nobody on node A yet');

    const page = await browser.context.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    const token = await signer.sign({ sub: 'viewer-fw', role: 'app', devices: ['*'] });
    await page.goto(`${a.httpUrl}/#token=${token}&direct=1`);
    try {
      // The device list is node B's retained presence, read through node A.
      const button = page.locator('button[data-device="cam-fw"]');
      await button.waitFor({ timeout: 15_000 });
      assert.equal(await connected(a), 1, 'the viewer signals through node A');
      assert.equal(await connected(b), 1, 'the camera alone is on node B');
      await button.click();
      const up = await until('connected', () => read(page), (s) => s.state === 'connected', 25_000);
      assert.equal(up.path, 'direct');
      const first = await until('decoded frames', () => read(page), (s) => s.framesDecoded > 5, 20_000);
      await until('more decoded frames', () => read(page), (s) => s.framesDecoded >= first.framesDecoded + 10, 10_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}\nbrowser console:\n${logs.slice(-40).join('\n')}\ndevice:\n${device.output().slice(-2000)}`);
    }
    const viewer = await device.next('viewer');
    assert.equal(viewer.path, 'direct');
    await page.click('#disconnect');
    await until('idle', () => read(page), (s) => s.state === 'idle', 5000);
    await page.close();
  });
});
