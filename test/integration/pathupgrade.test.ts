/**
 * A relayed path gives way to a direct one that comes up later (docs/client.md "Relayed first,
 * direct later"). Under loss a direct check, or its answer, is lost and retransmitted, and the
 * relayed pair succeeds first; werift kept the first nominated pair for good, so the session
 * paid for relay where a direct path existed (the lab's Node cells at 2 % loss). The patch
 * (patches/werift) takes the direct pair when it succeeds, on both ends.
 *
 *   test's namespace: p2pd (STUN/TURN on 3478), the camera (the SDK's device, test video)
 *     └─ veth ─ B: `p2pd connect --watch --json`
 *
 * B's UDP out, except to p2pd's port 3478, is held (lab/delay.ts `hold`) until the app reports the
 * relayed path: what B sends the camera directly waits, while everything through B's TURN
 * allocation is immediate. So the relayed pair is certain to succeed first and the connection to
 * come up on it, however loaded the machine (a fixed hold of 600 ms was not: DTLS over the relay
 * could take longer, and the direct pair won before the connection was up). Then the hold lets go:
 * the camera answers B's held checks with triggered checks of its own (RFC 8445 section 7.3.1.4)
 * and the direct pair succeeds on both ends, after the relayed one.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { delaySupported, shapeEgress } from '../../lab/delay.ts';
import { createHs256Signer } from '../../src/auth/token.ts';
import { TestVideoSource } from '../../src/device/testVideo.ts';
import { serve } from '../../src/sdk/node.ts';
import { jsonLines } from '../helpers/jsonLines.ts';
import { createNetNs, netnsSupported } from '../helpers/netns.ts';
import { P2PD_BIN, ROOT, startP2pd } from '../helpers/p2pd.ts';
import { freePort } from '../helpers/ports.ts';
import { metricValue } from '../helpers/stunClient.ts';
import { nextEvent } from '../helpers/wait.ts';

const JWT = 'pathupgrade-secret';
const signer = createHs256Signer(JWT);

/** Bytes relayed by TURN, both directions. */
const relayedBytes = (url: string): Promise<number> => metricValue(url, 'turn_relay_bytes_total{');

// No suite-wide timeout: each step has its own bound, and the runner's --test-timeout guards a hang.
describe('a relayed path that a direct one overtakes', { skip: netnsSupported() ?? delaySupported() ?? false }, () => {
  const stops: Array<() => unknown> = [];
  after(async () => {
    for (const stop of stops.reverse()) await Promise.resolve(stop()).catch(() => undefined);
  });

  test('both ends move to the direct pair when it succeeds, and the relay carries nothing more', async () => {
    const B = createNetNs({ prefix: 'p2pu' });
    stops.push(() => B.destroy());
    const [http, mqtt] = [await freePort(), await freePort()];
    const p2pd = await startP2pd({
      args: ['--listen', '0.0.0.0', '--external-ip', B.hostIp, '--port', '3478', '--http', `0.0.0.0:${http}`, '--mqtt', `0.0.0.0:${mqtt}`,
        '--jwt-secret', JWT, '--auth-secret', 'pathupgrade-turn', '--allow-peer', '10.201.0.0/16'],
    });
    stops.push(() => p2pd.stop());
    const media = new TestVideoSource({ width: 320, height: 240, fps: 15, bitrateKbps: 300 });
    await media.start();
    stops.push(() => media.stop());
    const dev = await serve({ server: p2pd.httpUrl, token: await signer.sign({ sub: 'cam-pu', role: 'device' }), media });
    stops.push(() => dev.close());

    const shaper = await shapeEgress(B.name, B.nsDev, { delayMs: 0, lossPct: 0, hold: true, only: ['-p', 'udp', '!', '--dport', '3478'] }, 11);
    stops.push(() => shaper.stop());
    const token = await signer.sign({ sub: 'app-pu', role: 'app', devices: ['cam-pu'] });
    const app = B.spawn([process.execPath, P2PD_BIN, 'connect', '--device', 'cam-pu', '--server', `http://${B.hostIp}:${http}`,
      '--token', token, '--watch', '--json', '--pings', '1'], { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
    const out = jsonLines(app);
    stops.push(() => app.kill('SIGTERM'));

    const first = await out.next((e) => e.event === 'path', 60_000, 'the path connected on');
    assert.equal(first.path, 'relay', 'the relayed pair came up first (what the held direct path is for)');
    shaper.release();
    await out.next((e) => e.event === 'path' && e.path === 'direct', 30_000, 'the move to the direct pair');
    // The camera moves too: at once when its own direct check succeeds, or, when that check ran
    // out on a loaded machine, at the app's next consent check on the direct pair (RFC 7675,
    // every ~5 s), which triggers the camera's. Then the video (300 kbit/s) no longer goes
    // through TURN in either direction: a 2 s window with less than 2,000 bytes relayed.
    const frames = (e: Record<string, unknown>): number => Number(e.framesReceived ?? 0);
    const deadline = Date.now() + 30_000;
    let relayed = Infinity;
    await out.next((e) => e.event === 'stats' && e.path === 'direct' && frames(e) > 0, 15_000, 'stats on the direct path');
    let last = await relayedBytes(p2pd.httpUrl);
    while (relayed >= 2_000 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 2_000));
      const now = await relayedBytes(p2pd.httpUrl);
      relayed = now - last;
      last = now;
    }
    const directions = [await metricValue(p2pd.httpUrl, 'turn_relay_bytes_total{direction="client_to_peer"'),
      await metricValue(p2pd.httpUrl, 'turn_relay_bytes_total{direction="peer_to_client"')];
    assert.ok(relayed < 2_000, `${relayed} bytes went through TURN in the last 2 s of 30 s on the direct path `
      + `(client to peer ${directions[0]}, peer to client ${directions[1]} in all; the camera's viewers: `
      + `${JSON.stringify(dev.viewers())}; the app's last output:\n${out.text().slice(-1500)})`);
    const now = out.events.filter((e) => e.event === 'stats').at(-1) ?? {};
    const more = await out.next((e) => e.event === 'stats' && frames(e) >= frames(now) + 15, 15_000, 'video on the direct path');
    assert.equal(more.path, 'direct');
    // The camera says so too: its viewer's path follows the pair at each keepalive (every 10 s).
    if (dev.viewers()[0]?.path !== 'direct') {
      await nextEvent('the camera reporting the direct path', (done) => dev.on('viewer', (v) => { if (v.path === 'direct') done(v); }), 15_000);
    }
    assert.equal(dev.viewers()[0]?.path, 'direct', `the camera's viewers: ${JSON.stringify(dev.viewers())}`);
    assert.equal(app.exitCode, null, `the app is still connected:\n${out.text().slice(-2000)}`);
  });
});
