/**
 * The connectivity lab's cells (docs/lab.md): for a camera NAT × app NAT pair, a camera
 * (`p2pd device`) in the camera site and an app in the app site — the Node SDK (lab/agent.ts,
 * what `p2pd connect` runs) or the web viewer in Chromium — connect N times through p2pd on the
 * server site. Each attempt is one record: success, path, setup, first frame, RTT.
 */
import type { SetupPhases } from '../src/sdk/setupTimeline.ts';
import { type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Output, SERVER_URL, appToken } from './service.ts';
import type { Stack, VideoSteps } from './report.ts';
import type { Namespace } from './sites.ts';

export type { Stack, VideoSteps };
import type { BrowserApp } from './browser.ts';

const AGENT = fileURLToPath(new URL('./agent.ts', import.meta.url));


export interface AttemptResult {
  readonly ok: boolean;
  readonly error?: string;
  readonly path?: 'direct' | 'relay';
  readonly setupMs?: number;
  readonly firstFrameMs?: number;
  readonly rttMs?: number;
  readonly natType?: string;
  /** The app's setup steps (src/sdk/setupTimeline.ts). */
  readonly phases?: SetupPhases;
  /** Chromium: how the video came up (docs/lab.md "First frame"). */
  readonly video?: VideoSteps;
}

/** N attempts of the Node app from `host` to `deviceId`, one process for all of them. */
export async function nodeAttempts(host: Namespace, deviceId: string, n: number, caFile: string): Promise<AttemptResult[]> {
  const token = await appToken('lab-app');
  const child: ChildProcess = host.spawn([process.execPath, AGENT, SERVER_URL, token, deviceId, String(n)], { env: { ...process.env, NODE_EXTRA_CA_CERTS: caFile } });
  const out = new Output(child);
  // Each attempt is bounded (setup 20 s, frame 10 s, pings 3 × 3 s): the process cannot hang for long.
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const guard = setTimeout(() => child.kill('SIGKILL'), n * 45_000 + 20_000);
  await exited;
  clearTimeout(guard);
  const results = out.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as AttemptResult);
  if (results.length < n) process.stderr.write(`agent output:\n${out.lines.join('\n')}\n`);
  while (results.length < n) results.push({ ok: false, error: `agent exited early: ${out.lines.filter((l) => !l.startsWith('{')).slice(-3).join(' | ')}` });
  return results;
}

/** N attempts of the Chromium viewer (already open on the service's page) to `deviceId`. */
export async function chromiumAttempts(app: BrowserApp, deviceId: string, n: number): Promise<AttemptResult[]> {
  const results: AttemptResult[] = [];
  for (let i = 0; i < n; i++) results.push(await app.attempt(deviceId));
  return results;
}
