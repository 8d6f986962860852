/**
 * Headless Chromium (Debian's /usr/bin/chromium, or CHROMIUM_PATH) driven by playwright-core,
 * set up for WebRTC on one machine: host candidates as plain IPs (no mDNS names a Node peer
 * cannot resolve), loopback allowed, no prompts, nothing fetched from the network. Each launch
 * gets a fresh profile directory, removed on close.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { STARTUP_TIMEOUT_MS } from './p2pd.ts';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-ui-for-media-stream',
  // WebRTC between processes of one machine: real host addresses and loopback.
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--allow-loopback-in-peer-connection',
  // Background tabs must not throttle timers or video.
  '--disable-background-timer-throttling', '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows',
  '--autoplay-policy=no-user-gesture-required',
];

export interface Chromium {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM_PATH);
}

export interface LaunchOptions {
  /**
   * Another executable, e.g. a script that runs `ip netns exec NS /usr/bin/chromium "$@"`: the
   * browser then lives in that namespace, still driven over its --remote-debugging-pipe.
   */
  readonly executablePath?: string;
  /** Flags after CHROMIUM_ARGS. */
  readonly args?: readonly string[];
}

export async function launchChromium(opts: LaunchOptions = {}): Promise<Chromium> {
  const dir = await mkdtemp(join(tmpdir(), 'p2pd-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(dir, {
      executablePath: opts.executablePath ?? CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS, ...(opts.args ?? [])],
      viewport: { width: 1280, height: 800 },
      timeout: STARTUP_TIMEOUT_MS,
    });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    context,
    async close() {
      await context.close().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
