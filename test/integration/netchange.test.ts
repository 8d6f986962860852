/**
 * Network change (docs/client.md "Network change"), as a phone moving from one network to
 * another: `p2pd connect --watch` runs in a network namespace (its own host), the camera (the
 * SDK's device with the test video) on this side. Mid-call the namespace's address is replaced
 * by one on another subnet and its old one removed: the app notices (networkWatch.ts), reconnects
 * signaling from the new address, restarts ICE, and the video goes on — on a path from the new
 * address.
 */
import { execFileSync } from 'node:child_process';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHs256Signer } from '../../src/auth/token.ts';
import { TestVideoSource } from '../../src/device/testVideo.ts';
import { serve } from '../../src/sdk/node.ts';
import { jsonLines } from '../helpers/jsonLines.ts';
import { createNetNs, netnsSupported, type NetNs } from '../helpers/netns.ts';
import { P2PD_BIN, ROOT, startP2pd, type P2pdProcess } from '../helpers/p2pd.ts';
import { freePort } from '../helpers/ports.ts';

const JWT = 'netchange-secret';
const signer = createHs256Signer(JWT);

interface StatsLine {
  event: string;
  framesReceived?: number;
  iceRestarts?: number;
  localCandidate?: string;
  path?: string;
}

// No suite-wide timeout: each step has its own bound, and the runner's --test-timeout guards a hang.
describe('network change: the app\'s address changes mid-call', { skip: netnsSupported() ?? false }, () => {
  const stops: Array<() => unknown> = [];
  after(async () => {
    for (const stop of stops.reverse()) await Promise.resolve(stop()).catch(() => undefined);
  });

  test('the app restarts ICE from its new address by itself and the video goes on', async () => {
    const ns: NetNs = createNetNs({ prefix: 'p2nc' });
    stops.push(() => ns.destroy());
    const [http, mqtt] = [await freePort(), await freePort()];
    const p2pd: P2pdProcess = await startP2pd({
      args: ['--listen', '0.0.0.0', '--external-ip', ns.hostIp, '--http', `0.0.0.0:${http}`, '--mqtt', `0.0.0.0:${mqtt}`,
        '--jwt-secret', JWT, '--auth-secret', 'netchange-turn', '--allow-peer', '10.0.0.0/8'],
    });
    stops.push(() => p2pd.stop());
    const media = new TestVideoSource({ width: 320, height: 240, fps: 15, bitrateKbps: 300 });
    await media.start();
    stops.push(() => media.stop());
    const dev = await serve({ server: p2pd.httpUrl, token: await signer.sign({ sub: 'cam-nc', role: 'device' }), media });
    stops.push(() => dev.close());

    const token = await signer.sign({ sub: 'app-nc', role: 'app', devices: ['cam-nc'] });
    const app = ns.spawn([process.execPath, P2PD_BIN, 'connect', '--device', 'cam-nc', '--server', `http://${ns.hostIp}:${http}`,
      '--token', token, '--watch', '--json', '--pings', '1'], { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
    const out = jsonLines(app);
    stops.push(() => app.kill('SIGTERM'));
    const stats = (check: (s: StatsLine) => boolean, what: string, timeoutMs: number): Promise<StatsLine> =>
      out.next((e) => e.event === 'stats' && check(e as unknown as StatsLine), timeoutMs, what) as unknown as Promise<StatsLine>;

    const before = await stats((s) => (s.framesReceived ?? 0) >= 10, 'video before the move', 60_000);
    assert.match(String(before.localCandidate), new RegExp(ns.nsIp.replaceAll('.', '\\.')), 'the path starts from the old address');

    // The move: a new address on another subnet, the default route through it, the old address gone.
    const [third, fourth] = ns.hostIp.split('.').slice(2).map(Number) as [number, number];
    const newHost = `10.202.${third}.${fourth}`;
    const newIp = `10.202.${third}.${fourth + 1}`;
    execFileSync('ip', ['addr', 'add', `${newHost}/30`, 'dev', ns.hostDev]);
    ns.exec(['ip', 'addr', 'add', `${newIp}/30`, 'dev', ns.nsDev]);
    ns.exec(['ip', 'route', 'replace', 'default', 'via', newHost]);
    ns.exec(['ip', 'addr', 'del', `${ns.nsIp}/30`, 'dev', ns.nsDev]);

    const moved = await stats((s) => (s.iceRestarts ?? 0) > (before.iceRestarts ?? 0) && String(s.localCandidate).includes(newIp),
      'an ICE restart onto the new address', 60_000);
    await stats((s) => (s.framesReceived ?? 0) >= (moved.framesReceived ?? 0) + 30, 'video after the move', 60_000);
    assert.equal(app.exitCode, null, `the app is still connected:\n${out.text().slice(-2000)}`);
  });
});
