/**
 * werift as a TURN client: two peers with relay-only ICE (iceTransportPolicy 'relay') and TURN
 * REST credentials, exchanging data-channel messages through p2pd in both directions.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { RTCPeerConnection, type RTCDataChannel } from 'werift';
import type { P2pdProcess } from '../helpers/p2pd.ts';
import { startTurnServer } from '../helpers/turnClient.ts';
import { metricValue } from '../helpers/stunClient.ts';
import { nextEvent } from '../helpers/wait.ts';
import { mintTurnRestCredentials } from '../../src/auth/turnRest.ts';

const SECRET = 'werift-secret';

describe('werift through the p2pd relay', () => {
  let p: P2pdProcess;
  const pcs: RTCPeerConnection[] = [];

  before(async () => {
    // A short --max-lifetime: werift refreshes within the test (and its refresh timer, which its
    // close() does not clear, lets the process end soon after).
    p = await startTurnServer({ args: ['--roles', 'stun,turn', '--auth-secret', SECRET, '--allow-peer', '127.0.0.0/8', '--max-lifetime', '4'] });
  });
  after(async () => {
    await Promise.all(pcs.map((pc) => pc.close().catch(() => undefined)));
    await p.stop();
  });

  test('two relay-only peers open a data channel and talk both ways', async () => {
    const peer = (sessionId: string): RTCPeerConnection => {
      const cred = mintTurnRestCredentials(SECRET, sessionId, Date.now() / 1000 + 600);
      const pc = new RTCPeerConnection({
        iceServers: [{ urls: `turn:127.0.0.1:${p.port}?transport=udp`, username: cred.username, credential: cred.credential }],
        iceTransportPolicy: 'relay',
      });
      pcs.push(pc);
      return pc;
    };
    const app = peer('werift-app');
    const device = peer('werift-device');
    app.onIceCandidate.subscribe((c) => { if (c) void device.addIceCandidate(c.toJSON()); });
    device.onIceCandidate.subscribe((c) => { if (c) void app.addIceCandidate(c.toJSON()); });

    const appChannel = app.createDataChannel('chat');
    const deviceChannel = nextEvent<RTCDataChannel>('the data channel', (done) => device.onDataChannel.subscribe((ch) => done(ch)), 20_000);
    await app.setLocalDescription(await app.createOffer());
    await device.setRemoteDescription(app.localDescription!);
    await device.setLocalDescription(await device.createAnswer());
    await app.setRemoteDescription(device.localDescription!);

    const ch = await deviceChannel;
    await nextEvent<void>('the channel to open', (done) => { if (appChannel.readyState === 'open') done(); else appChannel.stateChanged.subscribe((s) => { if (s === 'open') done(); }); }, 20_000);

    const fromApp = nextEvent<string>('app → device', (done) => ch.onMessage.subscribe((m) => done(m.toString())), 10_000);
    appChannel.send('hello device');
    assert.equal(await fromApp, 'hello device');
    const fromDevice = nextEvent<string>('device → app', (done) => appChannel.onMessage.subscribe((m) => done(m.toString())), 10_000);
    ch.send('hello app');
    assert.equal(await fromDevice, 'hello app');

    // Past the 4 s lifetime: werift's Refresh kept both allocations alive.
    await sleep(4500);
    const again = nextEvent<string>('app → device after a refresh', (done) => ch.onMessage.subscribe((m) => done(m.toString())), 10_000);
    appChannel.send('still here');
    assert.equal(await again, 'still here');

    // Every candidate pair is relay-to-relay: both peers hold allocations, and bytes went through them.
    for (const pc of [app, device]) {
      for (const c of pc.localDescription!.sdp.split('\r\n').filter((l) => l.startsWith('a=candidate'))) assert.match(c, /typ relay/);
    }
    assert.ok(await metricValue(p.httpUrl, 'turn_sessions_active') >= 2);
    assert.ok(await metricValue(p.httpUrl, 'turn_relay_bytes_total{direction="client_to_peer"') > 0);
    assert.ok(await metricValue(p.httpUrl, 'turn_relay_bytes_total{direction="peer_to_client"') > 0);
  });
});
