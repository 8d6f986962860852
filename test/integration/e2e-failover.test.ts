/**
 * A signaling node dies mid-session (docs/signaling.md "Finding a node"): two `p2pd serve` on one
 * Redis (the broker fabric), a Node app and a Node camera with test video both signaling through
 * node A. Node A gets SIGKILL: the direct path holds (the data channel still echoes), both
 * clients move to node B — the URLs the service listed — within the backoff's bound, and an ICE
 * restart goes through node B.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { REDIS_MISSING, haveRedis } from '../helpers/redis.ts';
import { connectOnNodeA, nextReconnect, startTwoNodes, wsOf, type OnNodeA, type TwoNodes } from '../helpers/twoNodes.ts';
import { eventually } from '../helpers/wait.ts';

/** The first reconnection waits below 1 s (full jitter), then the connection and the login: far below this. */
const BACK_WITHIN_MS = 15_000;

describe('a signaling node dies mid-session: the path holds, both clients move to the other node', { skip: haveRedis() ? false : REDIS_MISSING, timeout: 180_000 }, () => {
  let nodes: TwoNodes;
  let on: OnNodeA | undefined;

  before(async () => {
    nodes = await startTwoNodes('e2e-failover-secret', ['--auth-secret', 'e2e-failover-turn']);
  });
  after(async () => {
    await on?.close();
    await nodes?.stop((a) => a.stop());
  });

  test('SIGKILL to node A: echo still works, app and camera are back on node B, an ICE restart goes through it', async () => {
    const { a, b, media } = nodes;
    on = await connectOnNodeA(nodes, 'cam-fo', 'app-fo');
    const { devSig, appSig, conn, appToken } = on;
    // Each node is listed by its MQTT over WebSocket first, then its MQTT over TCP.
    const r = await fetch(`${a.httpUrl}/v1/signaling`, { headers: { authorization: `Bearer ${appToken}` } });
    const { signaling } = (await r.json()) as { signaling: { urls: string[] }[] };
    assert.deepEqual(new Set(signaling.map((x) => x.urls[0])), new Set([wsOf(a), wsOf(b)]));
    assert.ok(signaling.every((x) => x.urls[1]?.startsWith('mqtt://127.0.0.1:')), 'and its MQTT over TCP');
    assert.deepEqual(await conn.echo({ before: 'kill' }), { before: 'kill' });
    // Both learnt the other node: the app from its session answer, the camera from GET /v1/signaling.
    await eventually('the camera learns node B', () => devSig.urlList.includes(wsOf(b)));
    assert.ok(appSig.urlList.includes(wsOf(b)), `the app's list: ${appSig.urlList.join(', ')}`);

    const appBack = nextReconnect(appSig);
    const devBack = nextReconnect(devSig);
    const killedAt = Date.now();
    await a.stop('SIGKILL');

    // The path is peer to peer: it does not go through the node that died.
    assert.deepEqual(await conn.echo({ after: 'kill' }), { after: 'kill' });
    const deadline = new Promise<never>((_, reject) => {
      setTimeout(() => reject(new Error(`not back on node B within ${BACK_WITHIN_MS} ms (app ${appSig.url} up=${appSig.connected}, camera ${devSig.url} up=${devSig.connected})`)), BACK_WITHIN_MS).unref();
    });
    const [appAt, devAt] = await Promise.race([Promise.all([appBack, devBack]), deadline]);
    assert.equal(appSig.url, wsOf(b));
    assert.equal(devSig.url, wsOf(b));
    process.stdout.write(`# back on node B after: app ${appAt - killedAt} ms, camera ${devAt - killedAt} ms\n`);

    // An ICE restart: offer and answer through node B, the path up again, still direct.
    const restartsBefore = conn.iceRestarts;
    await conn.restartIce();
    assert.ok(conn.iceRestarts > restartsBefore, 'a restart ran');
    assert.equal(conn.state, 'connected');
    assert.deepEqual(await conn.echo({ after: 'restart' }), { after: 'restart' });

    // Video still comes (bounded by what the source produced, not by a clock).
    const before = (await conn.getStats()).framesReceived;
    const producedBefore = media.frames;
    await eventually('video after the restart', async () => {
      if (media.frames - producedBefore > 150) throw new Error('no video after the restart');
      return (await conn.getStats()).framesReceived >= before + 5;
    }, 60_000);
    // Node B serves the session: it reads it connected.
    const s = await fetch(`${b.httpUrl}/v1/sessions/${conn.sessionId}`, { headers: { authorization: `Bearer ${appToken}` } });
    assert.equal(s.status, 200);
    const body = (await s.json()) as { status: string; signaling: { urls: string[] }[] };
    assert.ok(body.signaling.some((x) => x.urls[0] === wsOf(b)), 'node B lists itself');
  });
});
