/**
 * Telemetry closes the loop: `p2pd serve --alt-ip 127.0.0.2` (RFC 5780), `p2pd device` and
 * `p2pd connect` on loopback, as a user runs them with no `--nat-type`. Both peers find their
 * own NAT type (RFC 5780 against the session's STUN server: `open internet` on loopback) and
 * report it with path, setup time and RTT in keepalives; the service's /metrics and the
 * session's trace show it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHs256Signer } from '../../src/auth/token.ts';
import { startDevice, type DeviceProcess } from '../helpers/device.ts';
import { P2PD_BIN, STARTUP_TIMEOUT_MS, startP2pd, type P2pdProcess } from '../helpers/p2pd.ts';

const run = promisify(execFile);
const JWT = 'telemetry-secret';
const signer = createHs256Signer(JWT);

/** One sample of a Prometheus text exposition, e.g. `nat_type_total{type="cone"}`; 0 when absent. */
function sample(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

interface TraceEvent { kind: string; what: string; detail: { from?: string; natType?: string; rttMs?: number; path?: string; setupMs?: number } }

describe('keepalives feed the P2P metrics from real clients', () => {
  let server: P2pdProcess;
  let device: DeviceProcess;

  before(async () => {
    server = await startP2pd({ args: ['--jwt-secret', JWT, '--alt-ip', '127.0.0.2', '--allow-peer', '127.0.0.0/8'] });
    device = await startDevice({ server: server.httpUrl, id: 'cam-ntd', token: await signer.sign({ sub: 'cam-ntd', role: 'device' }), args: ['--size', '160x120', '--fps', '10'] });
  });
  after(async () => {
    if (process.env.P2PD_E2E_DEBUG) process.stderr.write(`SERVER:\n${server?.output()}\nDEVICE:\n${device?.output()}\n`);
    await device?.stop();
    await server?.stop();
  });

  test('after one p2pd connect: latency, NAT types of both peers, a direct connection and its setup time', async () => {
    const appToken = await signer.sign({ sub: 'app-ntd', role: 'app', devices: ['cam-ntd'] });
    const env = { ...process.env };
    delete env.P2PD_TOKEN;
    // --direct: no TURN at either end, so the path is direct however slow the machine.
    const { stdout } = await run(process.execPath, [P2PD_BIN, 'connect', '--device', 'cam-ntd', '--server', server.httpUrl, '--token', appToken, '--direct', '--json'], { env, timeout: STARTUP_TIMEOUT_MS + 30_000 });
    const out = JSON.parse(stdout) as { sessionId: string; path: string };
    assert.equal(out.path, 'direct');

    // Keepalives are QoS 0 and tracked asynchronously: poll, boundedly, until the last one is in.
    let metrics = '';
    let events: TraceEvent[] = [];
    // A keepalive says the path once it is final (docs/client.md "Keepalives"): an early one, on a
    // loaded machine, may come before; the last one before the bye carries it in any case.
    const withPath = (from: string): TraceEvent | undefined => events.find((e) => e.what === 'keepalive' && e.detail.from === from && e.detail.path !== undefined);
    const nat = (from: string): string | undefined => events.find((e) => e.what === 'keepalive' && e.detail.from === from && e.detail.natType !== undefined)?.detail.natType;
    for (let i = 0; i < 50; i++) {
      metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
      const r = await fetch(`${server.httpUrl}/v1/sessions/${out.sessionId}/trace`, { headers: { authorization: `Bearer ${appToken}` } });
      assert.equal(r.status, 200);
      events = ((await r.json()) as { events: TraceEvent[] }).events;
      if (sample(metrics, 'p2p_latency_seconds_count') > 0 && nat('app-ntd') !== undefined && nat('cam-ntd') !== undefined
        && withPath('app-ntd') !== undefined && withPath('cam-ntd') !== undefined) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    // RFC 5780 against 127.0.0.1 with its alternate 127.0.0.2: no NAT, nothing filtered.
    assert.equal(nat('app-ntd'), 'open internet', JSON.stringify(events));
    assert.equal(nat('cam-ntd'), 'open internet', JSON.stringify(events));
    assert.equal(sample(metrics, 'nat_type_total', '{type="open internet"}'), 2, 'once per peer of the one session');
    assert.ok(sample(metrics, 'p2p_latency_seconds_count') > 0, metrics);
    assert.ok(sample(metrics, 'p2p_connections_total', '{path="direct"}') >= 1, metrics);
    assert.ok(sample(metrics, 'p2p_setup_seconds_count') >= 1, metrics);

    const appKeepalive = events.find((e) => e.what === 'keepalive' && e.detail.from === 'app-ntd' && e.detail.rttMs !== undefined);
    assert.ok(appKeepalive, 'the app reported its ping RTT');
    assert.equal(withPath('app-ntd')?.detail.path, 'direct', JSON.stringify(events));
    assert.ok((withPath('app-ntd')?.detail.setupMs ?? 0) > 0);
    assert.equal(withPath('cam-ntd')?.detail.path, 'direct', JSON.stringify(events));
  });
});
