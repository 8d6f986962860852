import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { BatchGroup, loadUdpBatch } from './batchGroup.ts';

const lib = loadUdpBatch();
const skip = lib ? false : 'the udpbatch addon is not built (npm run build:native)';
const PLAIN = { reusePort: false, ipv6Only: false, bufferBytes: 0 };

interface Got { sock: number; data: string; family: 4 | 6; ip4: number; address: string; port: number; truncated: boolean }

function peer(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  return new Promise((resolve) => s.bind(0, '127.0.0.1', () => resolve(s)));
}

function until(check: () => boolean, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let tries = 0;
    const poll = (): void => {
      if (check()) resolve();
      else if (++tries > 500) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(poll, 10);
    };
    poll();
  });
}

function recording(slotBytes: number, got: Got[]): BatchGroup {
  const g: BatchGroup = new BatchGroup(lib!, slotBytes, 4, (sock, n) => {
    for (let i = 0; i < n; i++) {
      got.push({ sock, data: g.rx.toString('latin1', g.offset(i), g.offset(i) + g.length(i)), family: g.family(i), ip4: g.ip4(i),
        address: g.address(i), port: g.port(i), truncated: g.truncated(i) });
    }
  });
  return g;
}

test('sockets of one group each deliver their own datagrams, with the source', { skip }, async () => {
  const got: Got[] = [];
  const g = recording(2048, got);
  const a = g.open('127.0.0.1', 0, PLAIN);
  const b = g.open('127.0.0.1', 0, PLAIN);
  assert.notEqual(a.sock, b.sock);
  const p = await peer();
  for (let i = 0; i < 10; i++) p.send(`a${i}`, a.port, '127.0.0.1');
  for (let i = 0; i < 10; i++) p.send(`b${i}`, b.port, '127.0.0.1');
  await until(() => got.length === 20, '20 datagrams');
  assert.deepEqual(got.filter((x) => x.sock === a.sock).map((x) => x.data), Array.from({ length: 10 }, (_, i) => `a${i}`));
  assert.deepEqual(got.filter((x) => x.sock === b.sock).map((x) => x.data), Array.from({ length: 10 }, (_, i) => `b${i}`));
  assert.deepEqual(got[0], { sock: got[0]!.sock, data: got[0]!.data, family: 4, ip4: 0x7f000001, address: '127.0.0.1', port: p.address().port, truncated: false });
  assert.equal(g.stats().received, 20);
  p.close();
  g.close();
});

test('a datagram longer than a slot arrives cut short and marked truncated', { skip }, async () => {
  const got: Got[] = [];
  const g = recording(16, got);
  const s = g.open('127.0.0.1', 0, PLAIN);
  const p = await peer();
  p.send(Buffer.alloc(40, 0x61), s.port, '127.0.0.1');
  p.send('short', s.port, '127.0.0.1');
  await until(() => got.length === 2, '2 datagrams');
  assert.deepEqual(got.map((x) => [x.data, x.truncated]), [['a'.repeat(16), true], ['short', false]]);
  p.close();
  g.close();
});

test('queued sends leave from their own socket, in order, a full set at a time', { skip }, async () => {
  const g = recording(2048, []);
  const a = g.open('127.0.0.1', 0, PLAIN);
  const b = g.open('127.0.0.1', 0, PLAIN);
  const p = await peer();
  const from: { data: string; port: number }[] = [];
  p.on('message', (m, r) => from.push({ data: m.toString(), port: r.port }));
  const payload = Buffer.from('..x..');
  // More than a batch of slots, interleaved over two sockets: the first set leaves when the slots fill.
  for (let i = 0; i < 100; i++) {
    assert.equal(g.queueMessage(i % 2 === 0 ? a.sock : b.sock, [Buffer.from(`m${i}`)], p.address().port, 4, '127.0.0.1'), 'queued');
  }
  assert.equal(g.queue(a.sock, payload, 2, 1, p.address().port, 0x7f000001, ''), 'queued');
  assert.equal(g.stats().sent, lib!.BATCH);
  g.flush();
  await until(() => from.length === 101, '101 datagrams');
  assert.deepEqual(from.filter((x) => x.port === a.port).map((x) => x.data), [...Array.from({ length: 50 }, (_, i) => `m${2 * i}`), 'x']);
  assert.deepEqual(from.filter((x) => x.port === b.port).map((x) => x.data), Array.from({ length: 50 }, (_, i) => `m${2 * i + 1}`));
  p.close();
  g.close();
});

test('closing a socket sends what was queued for it first; its port and id are free again', { skip }, async () => {
  const g = recording(2048, []);
  const a = g.open('127.0.0.1', 0, PLAIN);
  const p = await peer();
  const from: string[] = [];
  p.on('message', (m) => from.push(m.toString()));
  g.queueMessage(a.sock, Buffer.from('last words'), p.address().port, 4, '127.0.0.1');
  g.closeSocket(a.sock);
  await until(() => from.length === 1, 'the queued datagram');
  assert.deepEqual(from, ['last words']);
  assert.throws(() => g.open('127.0.0.1', p.address().port, PLAIN), (e: NodeJS.ErrnoException) => e.code === 'EADDRINUSE');
  // libuv lets go of a closed handle at the end of a loop turn (after setImmediate callbacks);
  // two turns later its id is reused.
  for (let i = 0; i < 2; i++) await new Promise((resolve) => setImmediate(resolve));
  const again = g.open('127.0.0.1', a.port, PLAIN);
  assert.equal(again.sock, a.sock);
  p.close();
  g.close();
});

test('refuses what it cannot send or bind, with a reason and no crash', { skip }, () => {
  const g = recording(64, []);
  const s = g.open('127.0.0.1', 0, PLAIN);
  assert.equal(g.queueMessage(s.sock, Buffer.alloc(65), 9, 4, '127.0.0.1'), 'too big');
  assert.equal(g.queueMessage(s.sock, [Buffer.alloc(40), Buffer.alloc(40)], 9, 4, '127.0.0.1'), 'too big');
  assert.equal(g.queue(s.sock, Buffer.alloc(100), 0, 65, 9, 0x7f000001, ''), 'too big');
  for (const bad of ['', 'localhost', '1.2.3', '256.1.1.1', '::1', '1.2.3.4 ']) {
    assert.equal(g.queueMessage(s.sock, Buffer.from('x'), 9, 4, bad), 'not a literal IP', bad);
  }
  for (const bad of ['', '1.2.3.4', ':::', '1::2::3', '12345::']) {
    assert.equal(g.queueMessage(s.sock, Buffer.from('x'), 9, 6, bad), 'not a literal IP', bad);
    assert.equal(g.queue(s.sock, Buffer.from('x'), 0, 1, 9, -1, bad), 'not a literal IP', bad);
  }
  for (const bad of ['', 'localhost', '1.2.3.4.5', '::g']) {
    assert.throws(() => g.open(bad, 0, PLAIN), (e: NodeJS.ErrnoException) => e.code === 'UDPBATCH_BAD_ADDRESS', bad);
  }
  g.flush();
  assert.equal(g.stats().sent, 0);
  g.close();
  assert.equal(g.queueMessage(s.sock, Buffer.from('x'), 9, 4, '127.0.0.1'), 'closed');
  assert.throws(() => g.open('127.0.0.1', 0, PLAIN), (e: NodeJS.ErrnoException) => e.code === 'UDPBATCH_CLOSED');
  g.flush();
  g.closeSocket(s.sock);
  g.close();
});

test('a group refuses slots it cannot hold', { skip }, () => {
  for (const slot of [0, -1, 65537]) assert.throws(() => new BatchGroup(lib!, slot, 4, () => undefined), /slot/);
});
