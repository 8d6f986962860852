/**
 * A signaling node drains (docs/signaling.md "Draining"): two `p2pd serve` on one Redis (the
 * broker fabric), a Node app and a Node camera with test video both signaling through node A.
 * SIGTERM to node A: it tells both to move, they are on node B before A exits, the camera never
 * turns offline (a clean DISCONNECT, no will), the data channel echoes throughout, an ICE restart
 * goes through node B, and node A exits 0 once they have left, long before its drain grace.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { REDIS_MISSING, haveRedis } from '../helpers/redis.ts';
import { connectOnNodeA, nextReconnect, startTwoNodes, wsOf, type OnNodeA, type TwoNodes } from '../helpers/twoNodes.ts';
import { eventually } from '../helpers/wait.ts';

/** Far above the move (a wait under 1 s, a clean end, a login): a hang guard. */
const MOVED_WITHIN_MS = 20_000;
/** The drain grace of node A: it must exit long before, once its clients have left. */
const GRACE_SEC = 60;

describe('a signaling node drains: its clients move to the other node before it exits', { skip: haveRedis() ? false : REDIS_MISSING, timeout: 180_000 }, () => {
  let nodes: TwoNodes;
  let on: OnNodeA | undefined;

  before(async () => {
    nodes = await startTwoNodes('e2e-drain-signaling-secret', ['--auth-secret', 'e2e-drain-sig-turn', '--drain-grace', String(GRACE_SEC)]);
  });
  after(async () => {
    await on?.close();
    await nodes?.stop((a) => a.stop('SIGKILL'));
  });

  test('SIGTERM to node A: app and camera move to node B without a presence flap, A exits 0 once they left', async () => {
    const { a, b, media } = nodes;
    on = await connectOnNodeA(nodes, 'cam-dr', 'app-dr', { presence: true });
    const { devSig, appSig, conn, appToken } = on;

    // What the app hears of the camera's presence from here on, and both clients' moves.
    const presence: boolean[] = [];
    appSig.on('presence', (_id, online) => presence.push(online));
    const moving: string[] = [];
    appSig.on('moving', () => moving.push('app'));
    devSig.on('moving', () => moving.push('camera'));
    const appMoved = nextReconnect(appSig);
    const devMoved = nextReconnect(devSig);
    const exited = new Promise<number | null>((resolve) => a.child.once('exit', (code) => resolve(code)));
    const termAt = Date.now();
    a.child.kill('SIGTERM');

    const guard = new Promise<never>((_, reject) => {
      setTimeout(() => reject(new Error(`not moved within ${MOVED_WITHIN_MS} ms (app ${appSig.url} up=${appSig.connected}, camera ${devSig.url} up=${devSig.connected}, told: ${moving.join(',')})`)), MOVED_WITHIN_MS).unref();
    });
    await Promise.race([Promise.all([appMoved, devMoved]), guard]);
    assert.deepEqual(moving.sort(), ['app', 'camera'], 'both were told to move');
    assert.equal(appSig.url, wsOf(b));
    assert.equal(devSig.url, wsOf(b));
    process.stdout.write(`# both on node B ${Date.now() - termAt} ms after SIGTERM\n`);

    // The path is peer to peer: it held through the move.
    assert.deepEqual(await conn.echo({ after: 'move' }), { after: 'move' });
    // Node A goes as soon as its clients have left, not at the end of its grace.
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running'), (GRACE_SEC - 20) * 1000).unref())]);
    assert.equal(code, 0, `node A's exit: ${String(code)}`);
    process.stdout.write(`# node A exited ${Date.now() - termAt} ms after SIGTERM (grace ${GRACE_SEC} s)\n`);

    // The camera never went offline: no `offline` reached the app, and node B takes a new session.
    assert.ok(!presence.includes(false), `presence the app saw: ${presence.join(',')}`);
    const r = await fetch(`${b.httpUrl}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${appToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ deviceId: 'cam-dr' }),
    });
    assert.equal(r.status, 201, 'the camera is online through node B');
    const extra = (await r.json()) as { sessionId: string };
    await fetch(`${b.httpUrl}/v1/sessions/${extra.sessionId}`, { method: 'DELETE', headers: { authorization: `Bearer ${appToken}` } });

    // An ICE restart: offer and answer through node B, the path up again.
    const restartsBefore = conn.iceRestarts;
    await conn.restartIce();
    assert.ok(conn.iceRestarts > restartsBefore, 'a restart ran');
    assert.equal(conn.state, 'connected');
    assert.deepEqual(await conn.echo({ after: 'restart' }), { after: 'restart' });
    const before = (await conn.getStats()).framesReceived;
    const producedBefore = media.frames;
    await eventually('video after the restart', async () => {
      if (media.frames - producedBefore > 150) throw new Error('no video after the restart');
      return (await conn.getStats()).framesReceived >= before + 5;
    }, 60_000);
  });
});
