/**
 * The two-minute start, as the README tells it: `p2pd serve` with its embedded defaults (no
 * secrets given), `p2pd device --id cam-1` and `p2pd connect --device cam-1` with no token (both
 * get development tokens), and the viewer page at `/`.
 * P2PD_E2E_DEBUG=1 prints the server's and the device's output at the end.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startDevice, type DeviceProcess } from '../helpers/device.ts';
import { P2PD_BIN, STARTUP_TIMEOUT_MS, startP2pd, type P2pdProcess } from '../helpers/p2pd.ts';

const run = promisify(execFile);

async function p2pd(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env };
  delete env.P2PD_TOKEN;
  try {
    // A hang guard: the process's cold start, then connect's own 20 s setup bound.
    const { stdout, stderr } = await run(process.execPath, [P2PD_BIN, ...args], { env, timeout: STARTUP_TIMEOUT_MS + 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

// No suite-wide timeout: every step below has its own bound (and the runner's --test-timeout
// guards a hang); a sum of them ran out on a busy machine while no step was stuck.
describe('the two-minute start: serve, device, connect, viewer', () => {
  let server: P2pdProcess;
  let device: DeviceProcess;

  before(async () => {
    server = await startP2pd({ args: ['--allow-peer', '127.0.0.0/8'] }); // no --jwt-secret: the embedded default
    device = await startDevice({ server: server.httpUrl, id: 'cam-1', token: undefined, args: ['--size', '320x240', '--fps', '15'] });
  });
  after(async () => {
    if (process.env.P2PD_E2E_DEBUG) process.stderr.write(`SERVER:\n${server?.output()}\nDEVICE:\n${device?.output()}\n`);
    await device?.stop();
    await server?.stop();
  });

  test('p2pd connect prints path, setup time and RTT', async () => {
    // --direct: no TURN at either end, so the path is direct however slow the machine.
    const r = await p2pd(['connect', '--device', 'cam-1', '--server', server.httpUrl, '--direct', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { path: string; setupMs: number; rttMs: number; sessionId: string; codec: string };
    assert.equal(out.path, 'direct');
    // Measured, not judged: speed targets live in `npm run bench -- e2e`, never in a timed test.
    assert.ok(out.setupMs > 0 && out.setupMs < 20_000, `setup ${out.setupMs}`);
    assert.ok(Number.isFinite(out.rttMs) && out.rttMs >= 0, `rtt ${out.rttMs}`);
    assert.equal(out.codec, 'VP8');
    // As the README runs it: any path ICE picks (direct on one machine, unless it is very busy).
    const text = await p2pd(['connect', '--device', 'cam-1', '--server', server.httpUrl, '--pings', '3']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^path: +(direct|relay) /m);
    assert.match(text.stdout, /^setup: +\d+ ms/m);
    assert.match(text.stdout, /^rtt: +[\d.]+ ms/m);
  });

  test('p2pd connect --relay goes through TURN', async () => {
    const r = await p2pd(['connect', '--device', 'cam-1', '--server', server.httpUrl, '--relay', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { path: string }).path, 'relay');
  });

  test('an offline device is one clear line and exit status 2', async () => {
    const r = await p2pd(['connect', '--device', 'cam-nope', '--server', server.httpUrl]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /\[DEVICE_OFFLINE\]/);
  });

  test('the viewer page, its bundle and its development-token button are served', async () => {
    const page = await fetch(`${server.httpUrl}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await page.text(), /<script type="module" src="\/assets\/viewer.js">/);
    const js = await fetch(`${server.httpUrl}/assets/viewer.js`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /javascript/);
    assert.ok((await js.text()).length > 10_000);
    assert.deepEqual(await (await fetch(`${server.httpUrl}/viewer-config.json`)).json(), { devTokens: true });
    const tok = await fetch(`${server.httpUrl}/v1/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"role":"app"}' });
    assert.equal(tok.status, 201);
    const body = await tok.json() as { token: string; role: string; sub: string };
    assert.equal(body.role, 'app');
    assert.match(body.sub, /^app-/);
  });
});
