/**
 * The bound on MQTT connections per node (docs/signaling.md "Connections per node",
 * `--mqtt-max-connections`): by default what the node's open-file limit leaves after a reserve
 * for its other files; a login beyond it gets CONNACK 3 (its client moves on to its next node),
 * and a socket beyond it and the margin for those refusals is closed at its accept. Each on a
 * real `p2pd serve`, the first under a low open-file limit as a small host has.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect, type Socket } from 'node:net';
import { defaultMaxConnections } from '../../src/server/openFiles.ts';
import { login, type Login } from '../helpers/mqttLogin.ts';
import { startP2pd, type P2pdProcess } from '../helpers/p2pd.ts';
import { freePort } from '../helpers/ports.ts';
import { JWT_SECRET, token } from '../helpers/signaling.ts';
import { metricValue } from '../helpers/stunClient.ts';
import { eventually } from '../helpers/wait.ts';

const SERVER_UNAVAILABLE = 3;
/** Logins sent at once (below the per-source bound on connections not logged in yet, 32). */
const LANES = 16;

async function startNode(extra: readonly string[], openFiles?: number): Promise<{ p2pd: P2pdProcess; url: string; wsUrl: string }> {
  const mqttPort = await freePort();
  const p2pd = await startP2pd({
    args: ['--mqtt', `127.0.0.1:${mqttPort}`, '--jwt-secret', JWT_SECRET, '--roles', 'signal,api', ...extra],
    ...(openFiles === undefined ? {} : { openFiles }),
  });
  return { p2pd, url: `mqtt://127.0.0.1:${mqttPort}`, wsUrl: `${p2pd.httpUrl.replace('http', 'ws')}/mqtt` };
}

/** Logs in `count` apps, LANES at a time, each to its CONNACK. */
async function loginMany(url: string, prefix: string, count: number, into: Login[]): Promise<number[]> {
  const codes: number[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: LANES }, async () => {
    while (next < count) {
      const id = `${prefix}${next++}`;
      const l = login(url, id, await token(id, 'app'));
      into.push(l);
      codes.push(await l.answer(30_000));
    }
  }));
  return codes;
}

describe('connections per node', () => {
  const logins: Login[] = [];
  const sockets: Socket[] = [];
  const nodes: P2pdProcess[] = [];
  after(async () => {
    for (const l of logins) l.end();
    for (const s of sockets) s.destroy();
    await Promise.all(nodes.map((n) => n.stop()));
  });

  describe('under an open-file limit of 400', () => {
    let node: { p2pd: P2pdProcess; url: string; wsUrl: string };
    before(async () => {
      node = await startNode([], 400);
      nodes.push(node.p2pd);
    });

    test('the node takes what the limit leaves after its reserve; the logins beyond get CONNACK 3, and it stays whole', async () => {
      const bound = defaultMaxConnections(400);
      assert.equal(await metricValue(node.p2pd.httpUrl, 'mqtt_max_connections '), bound);
      const extra = 20;
      const codes = await loginMany(node.url, 'app_f', bound + extra, logins);
      assert.equal(codes.filter((c) => c === 0).length, bound, 'exactly the bound logged in');
      assert.equal(codes.filter((c) => c === SERVER_UNAVAILABLE).length, extra, 'the rest told the node is unavailable');
      assert.equal(await metricValue(node.p2pd.httpUrl, 'mqtt_connections_refused_total{reason="max_connections"}'), extra);
      // Full, and whole: its HTTP side answers, and a client that leaves makes room for one refused.
      assert.equal((await fetch(`${node.p2pd.httpUrl}/healthz`)).status, 200);
      const leaving = logins.filter((l) => l.client.connected).slice(0, 5);
      for (const l of leaving) l.end();
      await eventually('room for five', async () => await metricValue(node.p2pd.httpUrl, 'mqtt_clients_connected') <= bound - 5, 20_000);
      const refused = logins.filter((l) => !l.client.connected && !leaving.includes(l)).slice(0, 5);
      for (const l of refused) assert.equal(await l.retry(), 0, 'a refused client logs in once there is room');
    });
  });

  describe('--mqtt-max-connections 3', () => {
    let node: { p2pd: P2pdProcess; url: string; wsUrl: string };
    before(async () => {
      node = await startNode(['--mqtt-max-connections', '3', '--mqtt-preauth-per-source', '1000']);
      nodes.push(node.p2pd);
    });

    test('TCP and WebSocket connections count alike; beyond the bound and its margin a socket is closed at its accept', async () => {
      const scrape = (series: string): Promise<number> => metricValue(node.p2pd.httpUrl, series);
      const mine: Login[] = [];
      assert.deepEqual(await loginMany(node.url, 'app_t', 2, mine), [0, 0]);
      const ws = login(node.wsUrl, 'app_w0', await token('app_w0', 'app'));
      mine.push(ws);
      assert.equal(await ws.answer(30_000), 0);
      const over = login(node.wsUrl, 'app_w1', await token('app_w1', 'app'));
      mine.push(over);
      assert.equal(await over.answer(30_000), SERVER_UNAVAILABLE, 'a fourth, over WebSocket');
      logins.push(...mine);
      await eventually('the refusal closed', async () => await scrape('mqtt_clients_connected') === 3, 20_000);

      // Sockets that never log in: 64 (the margin for refusals) are let in, the next is closed at once.
      const margin = 64;
      const port = Number(new URL(node.url).port);
      for (let i = 0; i < margin; i++) {
        const s = tcpConnect({ host: '127.0.0.1', port });
        s.on('error', () => undefined);
        sockets.push(s);
      }
      await eventually('the margin accepted', async () => await scrape('mqtt_clients_connected') === 3 + margin, 20_000);
      const refusedBefore = await scrape('mqtt_connections_refused_total{reason="max_connections"}');
      const beyond = tcpConnect({ host: '127.0.0.1', port });
      beyond.on('error', () => undefined);
      sockets.push(beyond);
      await new Promise<void>((resolve) => beyond.once('close', () => resolve()));
      assert.equal(await scrape('mqtt_connections_refused_total{reason="max_connections"}'), refusedBefore + 1);
      assert.ok(sockets.slice(0, margin).every((s) => !s.destroyed), 'the margin is still open');
      assert.ok(mine.slice(0, 3).every((l) => l.client.connected), 'the clients logged in are untouched');

      // Closed sockets give their place back, WebSocket ones too: more refused WebSocket logins
      // than the margin, one after another, each still answered.
      for (const s of sockets.splice(0)) s.destroy();
      await eventually('the raw sockets closed', async () => await scrape('mqtt_clients_connected') === 3, 20_000);
      for (let i = 0; i < margin + 6; i++) {
        const again = login(node.wsUrl, 'app_w2', await token('app_w2', 'app'));
        assert.equal(await again.answer(30_000), SERVER_UNAVAILABLE, `refused WebSocket login ${i}`);
        again.end();
      }
      mine[0]?.end();
      await eventually('room for one', async () => await scrape('mqtt_clients_connected') === 2, 20_000);
      const last = login(node.wsUrl, 'app_w3', await token('app_w3', 'app'));
      logins.push(last);
      assert.equal(await last.answer(30_000), 0, 'a login once one left');
    });
  });
});
