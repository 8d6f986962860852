import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { StreamGuard, WRITE_PAUSE_BYTES, type GuardedStream } from './streamGuard.ts';
import { streamCloseLabel, type StreamCloseCode } from '../errors.ts';

/** A real loopback connection pair: the server side is what the guard watches. */
async function pair(): Promise<{ server: net.Socket; client: net.Socket; close: () => void }> {
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const accepted = once(listener, 'connection');
  const client = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => undefined);
  const [server] = (await accepted) as [net.Socket];
  server.on('error', () => undefined);
  return { server, client, close: () => { client.destroy(); server.destroy(); listener.close(); } };
}

function guard(opts: { idleTimeoutMs?: number; maxPerSource?: number; holds?: (s: net.Socket) => boolean } = {}) {
  const closes: StreamCloseCode[] = [];
  const paused = { now: 0 };
  const g = new StreamGuard({
    idleTimeoutMs: opts.idleTimeoutMs ?? 1000,
    maxPerSource: opts.maxPerSource ?? 0,
    holdsAllocation: opts.holds ?? (() => false),
    onClose: (_t, code) => closes.push(code),
    onPause: (_t, delta) => { paused.now += delta; },
  });
  return { g, closes, paused };
}

test('closes a connection idle past the timeout, not before', async () => {
  const { g, closes } = guard({ idleTimeoutMs: 1000 });
  const p = await pair();
  try {
    g.clockMs = 10_000;
    const c = g.admit(p.server, 'tcp') as GuardedStream;
    g.sweep(10_999);
    assert.deepEqual(closes, []);
    assert.equal(p.server.destroyed, false);
    g.sweep(11_000);
    assert.deepEqual(closes, ['STREAM_IDLE']);
    assert.equal(p.server.destroyed, true);
    g.release(c);
    assert.equal(g.size, 0);
  } finally { p.close(); }
});

test('a message received restarts the idle time', async () => {
  const { g, closes } = guard({ idleTimeoutMs: 1000 });
  const p = await pair();
  try {
    g.clockMs = 0;
    const c = g.admit(p.server, 'tcp') as GuardedStream;
    g.sweep(900);
    c.lastRxMs = g.clockMs;
    g.sweep(1800);
    assert.deepEqual(closes, []);
  } finally { p.close(); }
});

test('spares an idle connection that holds an allocation', async () => {
  const p = await pair();
  const { g, closes } = guard({ idleTimeoutMs: 1000, holds: (s) => s === p.server });
  try {
    g.clockMs = 0;
    g.admit(p.server, 'tcp');
    g.sweep(60_000);
    assert.deepEqual(closes, []);
    assert.equal(p.server.destroyed, false);
  } finally { p.close(); }
});

test('refuses a connection past the per-source cap, and admits again after a release', async () => {
  const { g, closes } = guard({ maxPerSource: 2 });
  const ps = [await pair(), await pair(), await pair(), await pair()];
  try {
    const a = g.admit(ps[0]!.server, 'tls');
    assert.ok(a);
    assert.ok(g.admit(ps[1]!.server, 'tls'));
    assert.equal(g.admit(ps[2]!.server, 'tls'), undefined);
    assert.deepEqual(closes, ['STREAM_PER_SOURCE']);
    assert.equal(ps[2]!.server.destroyed, true);
    g.release(a);
    g.release(a); // twice is harmless
    assert.ok(g.admit(ps[3]!.server, 'tls'));
  } finally { for (const p of ps) p.close(); }
});

test('pauses reading while writes are backed up, resumes on drain, and closes a connection stalled past the timeout', async () => {
  const { g, closes, paused } = guard({ idleTimeoutMs: 1000 });
  const p = await pair();
  try {
    g.clockMs = 0;
    const c = g.admit(p.server, 'tcp') as GuardedStream;
    assert.equal(g.mayRead(c), true);
    assert.equal(paused.now, 0);
    // The client reads nothing: fill the kernel's buffers until the socket itself queues.
    p.client.pause();
    const block = Buffer.alloc(256 * 1024);
    while (p.server.writableLength <= WRITE_PAUSE_BYTES) p.server.write(block);
    assert.equal(g.mayRead(c), false);
    assert.equal(c.pausedAtMs, 0);
    assert.equal(p.server.isPaused(), true);
    assert.equal(paused.now, 1);
    g.resume(c);
    assert.equal(c.pausedAtMs, -1);
    assert.equal(paused.now, 0);
    assert.equal(g.mayRead(c), false);
    c.lastRxMs = 500; // a message just before the pause: still, taking nothing for the timeout closes it
    g.sweep(999);
    assert.deepEqual(closes, []);
    g.sweep(1000);
    assert.deepEqual(closes, ['STREAM_WRITE_STALLED']);
    g.release(c);
    assert.equal(paused.now, 0);
  } finally { p.close(); }
});

test('closes a connection whose queue passes the bound', async () => {
  const { g, closes } = guard({ idleTimeoutMs: 60_000 });
  const p = await pair();
  try {
    const c = g.admit(p.server, 'tcp') as GuardedStream;
    p.client.pause();
    const block = Buffer.alloc(256 * 1024);
    while (p.server.writableLength <= WRITE_PAUSE_BYTES) p.server.write(block);
    c.unparsedBytes = 1024 * 1024;
    assert.equal(g.mayRead(c), false);
    assert.deepEqual(closes, ['STREAM_WRITE_BACKLOG']);
    assert.equal(p.server.destroyed, true);
  } finally { p.close(); }
});

test('metric labels are the codes in lower case without STREAM_', () => {
  assert.equal(streamCloseLabel('STREAM_WRITE_STALLED'), 'write_stalled');
  assert.equal(streamCloseLabel('STREAM_PER_SOURCE'), 'per_source');
  assert.equal(streamCloseLabel('TLS_HANDSHAKE_TIMEOUT'), 'tls_handshake_timeout');
});
