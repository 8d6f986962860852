/**
 * Clients behind a firewall that lets only TCP 80 and 443 out (docs/client.md "Behind a firewall
 * that blocks UDP"): p2pd serves HTTP (the API, MQTT over WebSocket at /mqtt, the viewer) on 80
 * and TURN over TLS on 443 with a certificate for `turn.ubk.test` (--tls-host), and:
 * `p2pd connect` (werift) and the web viewer (Chromium) inside the firewall reach a camera
 * outside, and a `p2pd device` inside it is reached from outside, each over a TURN/TLS relay.
 *
 *   test's namespace (the outside: a device, `p2pd connect`)
 *     └─ veth ─ S (p2pd on S.nsIp: 80, 443, 3478)
 *                 └─ veth ─ B (the blocked client: OUTPUT drops UDP and TCP but to 80/443)
 *
 * S does not forward, so B reaches S's addresses and nothing else: no direct path exists, and
 * from B nothing but TURN over TLS on 443 can carry media.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { shapeEgress } from '../../lab/delay.ts';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { createHs256Signer } from '../../src/auth/token.ts';
import { CHROMIUM_PATH, chromiumAvailable, launchChromium, type Chromium } from '../helpers/chromium.ts';
import { startDevice, type DeviceProcess } from '../helpers/device.ts';
import { jsonLines } from '../helpers/jsonLines.ts';
import { createNetNs, netnsSupported, type NetNs } from '../helpers/netns.ts';
import { P2PD_BIN, STARTUP_TIMEOUT_MS, startP2pd, type P2pdProcess } from '../helpers/p2pd.ts';
import { metricValue } from '../helpers/stunClient.ts';

const run = promisify(execFile);
const JWT = 'udpblocked-secret';
const signer = createHs256Signer(JWT);
const TLS_HOST = 'turn.ubk.test';

function skipReason(): string | false {
  const ns = netnsSupported();
  if (ns) return ns;
  for (const [tool, arg] of [['iptables', '--version'], ['openssl', 'version']] as const) {
    try { execFileSync(tool, [arg], { stdio: 'ignore' }); } catch { return `needs ${tool}`; }
  }
  return false;
}

/** iptables packet counters of B's OUTPUT rules, by their comment. */
function counters(ns: NetNs): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of ns.exec(['iptables', '-L', 'OUTPUT', '-v', '-n', '-x']).split('\n')) {
    const m = /^\s*(\d+)\s+\d+\s.*\/\* (\S+) \*\//.exec(line);
    if (m) out[m[2] as string] = Number(m[1]);
  }
  return out;
}

interface ViewerState {
  state: string;
  path: string | undefined;
  error: { code: string; message: string } | undefined;
  framesDecoded: number;
}

const readViewer = (page: Page): Promise<ViewerState> => page.evaluate(() => {
  const v = (window as unknown as { p2pdViewer: { state: string; path?: string; error?: { code: string; message: string }; stats?: { framesDecoded?: number } } }).p2pdViewer;
  return { state: v.state, path: v.path, error: v.error, framesDecoded: v.stats?.framesDecoded ?? 0 };
});

async function waitViewer(page: Page, what: string, check: (s: ViewerState) => boolean, timeoutMs: number): Promise<ViewerState> {
  const end = Date.now() + timeoutMs;
  let last: ViewerState | undefined;
  while (Date.now() < end) {
    last = await readViewer(page);
    if (last.state === 'failed') throw new Error(`viewer failed while waiting for ${what}: ${JSON.stringify(last.error)}`);
    if (check(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}; viewer: ${JSON.stringify(last)}`);
}

// No suite-wide timeout: every step has its own bound (and the runner's --test-timeout guards a hang).
describe('clients behind a firewall that passes only TCP 80 and 443', { skip: skipReason() }, () => {
  let S: NetNs;
  let B: NetNs;
  let dir: string;
  let p2pd: P2pdProcess;
  let camera: DeviceProcess;
  let appToken: string;
  /** For a werift client in B: the test certificate as a trusted CA (Node verifies TURN TLS). */
  let trustEnv: NodeJS.ProcessEnv;
  const stops: Array<() => Promise<unknown>> = [];

  before(async () => {
    S = createNetNs({ prefix: 'ubk' });
    B = createNetNs({ prefix: 'ubk', via: S, hosts: { [TLS_HOST]: S.nsIp } });
    const rule = (comment: string, ...match: string[]): void => {
      B.exec(['iptables', '-A', 'OUTPUT', ...match, '-m', 'comment', '--comment', comment]);
    };
    rule('loopback', '-o', 'lo', '-j', 'ACCEPT');
    rule('http', '-p', 'tcp', '--dport', '80', '-j', 'ACCEPT');
    rule('https', '-p', 'tcp', '--dport', '443', '-j', 'ACCEPT');
    rule('udp-dropped', '-p', 'udp', '-j', 'DROP');
    rule('tcp-dropped', '-p', 'tcp', '-j', 'DROP');

    dir = mkdtempSync(join(tmpdir(), 'p2pd-udpblocked-'));
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', `/CN=${TLS_HOST}`, '-addext', `subjectAltName=DNS:${TLS_HOST}`, '-keyout', join(dir, 'key.pem'), '-out', cert], { stdio: 'ignore' });
    trustEnv = { NODE_EXTRA_CA_CERTS: cert };

    p2pd = await startP2pd({
      netns: S.name,
      args: ['--listen', '0.0.0.0', '--external-ip', S.nsIp, '--port', '3478', '--http', `${S.nsIp}:80`, '--mqtt', `${S.nsIp}:1883`,
        '--tls-port', '443', '--tls-cert', cert, '--tls-key', join(dir, 'key.pem'), '--tls-host', TLS_HOST,
        '--jwt-secret', JWT, '--auth-secret', 'udpblocked-turn', '--allow-peer', '10.201.0.0/16'],
    });
    stops.push(() => p2pd.stop());
    camera = await startDevice({ server: p2pd.httpUrl, id: 'cam-out', token: await signer.sign({ sub: 'cam-out', role: 'device' }), args: ['--size', '320x240', '--fps', '15'] });
    stops.push(() => camera.stop());
    appToken = await signer.sign({ sub: 'app-ubk', role: 'app', devices: ['*'] });
  });

  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    B?.destroy();
    S?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a session from a server with --tls-port 443 offers turns: on 443 under the certificate\'s name', async () => {
    const res = await fetch(`${p2pd.httpUrl}/v1/sessions`, {
      method: 'POST', headers: { authorization: `Bearer ${appToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ deviceId: 'cam-out' }),
    });
    assert.equal(res.status, 201);
    const s = await res.json() as { sessionId: string; iceServers: Array<{ urls: string[]; username?: string }> };
    const turn = s.iceServers.find((i) => i.username !== undefined);
    assert.deepEqual(turn?.urls, [
      `turn:${S.nsIp}:3478?transport=udp`, `turn:${S.nsIp}:3478?transport=tcp`, `turns:${TLS_HOST}:443?transport=tcp`,
    ]);
    await fetch(`${p2pd.httpUrl}/v1/sessions/${s.sessionId}`, { method: 'DELETE', headers: { authorization: `Bearer ${appToken}` } });
  });

  test('p2pd connect inside the firewall reaches the camera outside over TURN/TLS and pings', async () => {
    const before = counters(B);
    const child = B.spawn([process.execPath, P2PD_BIN, 'connect', '--device', 'cam-out', '--server', p2pd.httpUrl, '--token', appToken, '--pings', '3', '--watch', '--json'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...trustEnv } });
    const lines = jsonLines(child);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      // Its signaling went over ws://…:80/mqtt (no --mqtt-url: the SDK's default), the only way out.
      const summary = await lines.next((e) => 'sessionId' in e && !('event' in e), STARTUP_TIMEOUT_MS + 30_000, 'the connect summary');
      assert.equal(summary.path, 'relay');
      assert.ok(typeof summary.rttMs === 'number' && summary.rttMs >= 0, `rtt ${String(summary.rttMs)}`);
      await lines.next((e) => e.event === 'stats' && Number(e.framesReceived) > 0, 15_000, 'video frames through the relay');
      // The relay is held over TLS: one TURN/TLS connection is open while connected.
      assert.ok(await metricValue(p2pd.httpUrl, 'stun_stream_connections{transport="tls"}') >= 1);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, lines.text());
    const c = counters(B);
    assert.ok((c['udp-dropped'] ?? 0) > (before['udp-dropped'] ?? 0), 'UDP was tried and dropped');
    assert.ok((c.https ?? 0) > (before.https ?? 0), 'TCP 443 carried it');
  });

  test('an app that connects again inside the firewall relays every time (the remembered reach verdict skips the probe)', async () => {
    // The lab's Node app: one process, two connect() in turn. For the second, werift gathers
    // at once (turnReach.ts remembers the verdict), so the camera's candidates can arrive before the
    // TURN/TLS allocation: werift must pair the relayed candidate with them (patches/werift).
    // 300 ms on TCP 443 out of the firewall (TURN/TLS only; signaling on 80 is not held) makes that
    // order certain rather than a race: the allocation takes four of its round trips (TCP, TLS,
    // the 401 and the Allocate), long after the camera's candidates.
    const shaper = await shapeEgress(B.name, B.nsDev, { delayMs: 300, lossPct: 0, only: ['-p', 'tcp', '--dport', '443'] }, 7);
    try {
      const agent = fileURLToPath(new URL('../../lab/agent.ts', import.meta.url));
      const child = B.spawn([process.execPath, agent, p2pd.httpUrl, appToken, 'cam-out', '2'],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...trustEnv } });
      const lines = jsonLines(child);
      const results: Record<string, unknown>[] = [];
      for (let i = 0; i < 2; i++) results.push(await lines.next((e) => 'ok' in e && !results.includes(e), 2 * 45_000, `attempt ${i + 1}`));
      assert.deepEqual(results.map((r) => [r.ok, r.error, r.path]), [[true, undefined, 'relay'], [true, undefined, 'relay']]);
    } finally {
      shaper.stop();
    }
  });

  test('a camera inside the firewall is reached from outside over its TURN/TLS relay', async () => {
    const inside = await startDevice({
      server: p2pd.httpUrl, id: 'cam-in', token: await signer.sign({ sub: 'cam-in', role: 'device' }), netns: B.name, env: trustEnv,
      args: ['--size', '320x240', '--fps', '15'],
    });
    stops.push(() => inside.stop());
    const { stdout } = await run(process.execPath, [P2PD_BIN, 'connect', '--device', 'cam-in', '--server', p2pd.httpUrl, '--token', appToken, '--pings', '3', '--json'],
      { timeout: STARTUP_TIMEOUT_MS + 30_000 });
    const out = JSON.parse(stdout) as { path: string; remote: string; rttMs: number };
    assert.equal(out.path, 'relay');
    assert.match(out.remote, /^relay /, 'the camera\'s own relay candidate: nothing else gets out of B');
    assert.ok(Number.isFinite(out.rttMs));
    const viewer = await inside.next('viewer');
    assert.equal(viewer.path, 'relay');
    await inside.stop();
  });

  test('the web viewer in Chromium inside the firewall plays the camera outside', { skip: chromiumAvailable() ? false : `no Chromium at ${CHROMIUM_PATH}` }, async () => {
    // Chromium in B, still driven over its --remote-debugging-pipe.
    const wrapper = join(dir, 'chromium-in-ns.sh');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${B.name} ${CHROMIUM_PATH} "$@"\n`, { mode: 0o755 });
    // Chromium verifies TURN/TLS certificates: trust exactly the test certificate's key.
    const spki = execFileSync('sh', ['-c', `openssl x509 -in ${join(dir, 'cert.pem')} -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`], { encoding: 'utf8' }).trim();
    const browser: Chromium = await launchChromium({ executablePath: wrapper, args: [`--ignore-certificate-errors-spki-list=${spki}`] });
    stops.push(() => browser.close());
    const page = await browser.context.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    try {
      await page.goto(`${p2pd.httpUrl}/#token=${appToken}`);
      const button = page.locator('button[data-device="cam-out"]');
      await button.waitFor({ timeout: 15_000 });
      await button.click();
      const connected = await waitViewer(page, 'connected', (s) => s.state === 'connected', 25_000);
      assert.equal(connected.path, 'relay');
      const first = await waitViewer(page, 'decoded frames', (s) => s.framesDecoded > 5, 20_000);
      await waitViewer(page, 'more decoded frames', (s) => s.framesDecoded >= first.framesDecoded + 10, 10_000);
      assert.ok(await metricValue(p2pd.httpUrl, 'stun_stream_connections{transport="tls"}') >= 1, 'the viewer\'s relay is over TLS');
    } catch (err) {
      throw new Error(`${(err as Error).message}\nbrowser console:\n${logs.join('\n')}`);
    }
    await browser.close();
  });
});
