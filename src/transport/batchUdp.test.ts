import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { loadUdpBatch, type DatagramAnswerer } from './batchGroup.ts';
import { BatchUdpSocket, LISTENER_SLOT_BYTES } from './batchUdp.ts';

const lib = loadUdpBatch();
const skip = lib ? false : 'the udpbatch addon is not built (npm run build:native)';

function peer(type: 'udp4' | 'udp6', host: string): Promise<dgram.Socket> {
  const s = dgram.createSocket(type);
  // Room for every answer: this process does not read while it handles a batch.
  return new Promise((resolve) => s.bind(0, host, () => { s.setRecvBufferSize(4 << 20); resolve(s); }));
}

test('receives datagrams with their source and answers them in one batch', { skip }, async () => {
  const sock = new BatchUdpSocket(lib!, '127.0.0.1', 0, false, false);
  sock.on('message', (buf: Buffer, rinfo: dgram.RemoteInfo) => {
    sock.send([Buffer.from('re:'), buf], rinfo.port, rinfo.address);
  });
  const client = await peer('udp4', '127.0.0.1');
  const got: string[] = [];
  const all = new Promise<void>((resolve) => client.on('message', (m) => { got.push(m.toString()); if (got.length === 200) resolve(); }));
  for (let i = 0; i < 200; i++) client.send(`m${i}`, sock.address().port, '127.0.0.1');
  await all;
  assert.deepEqual(new Set(got), new Set(Array.from({ length: 200 }, (_, i) => `re:m${i}`)));
  const stats = sock.stats();
  assert.equal(stats.received, 200);
  assert.equal(stats.sent, 200);
  client.close();
  sock.close();
});

test('a handler keeps its buffer: each message is its own copy', { skip }, async () => {
  const sock = new BatchUdpSocket(lib!, '127.0.0.1', 0, false, false);
  const kept: Buffer[] = [];
  const done = new Promise<void>((resolve) => sock.on('message', (buf: Buffer) => { kept.push(buf); if (kept.length === 100) resolve(); }));
  const client = await peer('udp4', '127.0.0.1');
  for (let i = 0; i < 100; i++) client.send(Buffer.alloc(50, i), sock.address().port, '127.0.0.1');
  await done;
  const firsts = new Set(kept.map((b) => b[0]));
  assert.equal(firsts.size, 100);
  for (const b of kept) assert.ok(b.every((x) => x === b[0]));
  client.close();
  sock.close();
});

test('sends outside a batch go out at once, over IPv6 too', { skip }, async (t) => {
  const probe = dgram.createSocket('udp6');
  const v6 = await new Promise<boolean>((resolve) => { probe.once('error', () => resolve(false)); probe.bind(0, '::1', () => resolve(true)); });
  probe.close();
  if (!v6) return t.skip('no IPv6 loopback');
  const sock = new BatchUdpSocket(lib!, '::1', 0, false, true);
  const client = await peer('udp6', '::1');
  const got = new Promise<[Buffer, dgram.RemoteInfo]>((resolve) => client.on('message', (m, r) => resolve([m, r])));
  sock.send(Buffer.from('hello'), client.address().port, '::1');
  const [m, r] = await got;
  assert.equal(m.toString(), 'hello');
  assert.equal(r.port, sock.address().port);
  const back = new Promise<dgram.RemoteInfo>((resolve) => sock.on('message', (_b: Buffer, ri: dgram.RemoteInfo) => resolve(ri)));
  client.send('x', sock.address().port, '::1');
  assert.deepEqual({ ...(await back), size: 1 }, { address: '::1', family: 'IPv6', port: client.address().port, size: 1 });
  client.close();
  sock.close();
});

test('an answerer answers its datagrams inside the batch, to their source; the rest are emitted', { skip }, async () => {
  const sock = new BatchUdpSocket(lib!, '127.0.0.1', 0, false, false);
  // Answers datagrams that start with 'a' with 'A' + the rest and the source port it was given.
  const answerer: DatagramAnswerer = {
    maxLength: 8,
    answer: (rx, off, len, family, addr, addrOff, port, out, outOff) => {
      if (rx[off] !== 0x61) return 0;
      assert.equal(family, 4);
      assert.deepEqual([...addr.subarray(addrOff, addrOff + 4)], [127, 0, 0, 1]);
      out[outOff] = 0x41;
      rx.copy(out, outOff + 1, off + 1, off + len);
      return len + out.write(`@${port}`, outOff + len);
    },
  };
  sock.answerInBatch(answerer);
  const emitted: string[] = [];
  sock.on('message', (buf: Buffer, rinfo: dgram.RemoteInfo) => {
    emitted.push(buf.toString());
    sock.send([Buffer.from('re:'), buf], rinfo.port, rinfo.address);
  });
  const clients = [await peer('udp4', '127.0.0.1'), await peer('udp4', '127.0.0.1')];
  const got = clients.map(() => [] as string[]);
  const all = Promise.all(clients.map((c, k) => new Promise<void>((resolve) => c.on('message', (m) => { got[k]!.push(m.toString()); if (got[k]!.length === 100) resolve(); }))));
  for (let i = 0; i < 100; i++) for (const c of clients) c.send(i % 2 ? `b${i}` : `a${i}`, sock.address().port, '127.0.0.1');
  await all;
  clients.forEach((c, k) => {
    const me = c.address().port;
    assert.deepEqual(new Set(got[k]), new Set(Array.from({ length: 100 }, (_, i) => (i % 2 ? `re:b${i}` : `A${i}@${me}`))));
  });
  assert.deepEqual(new Set(emitted), new Set(Array.from({ length: 50 }, (_, j) => `b${2 * j + 1}`)));
  assert.equal(emitted.length, 100);
  // Longer than maxLength: not offered to the answerer.
  const long = new Promise<string>((resolve) => clients[0]!.once('message', (m) => resolve(m.toString())));
  clients[0]!.send('a-longer-one', sock.address().port, '127.0.0.1');
  assert.equal(await long, 're:a-longer-one');
  for (const c of clients) c.close();
  sock.close();
});

test('refuses what it cannot send, with an error and no crash', { skip }, () => {
  const sock = new BatchUdpSocket(lib!, '127.0.0.1', 0, false, false);
  const errors: string[] = [];
  sock.send(Buffer.alloc(LISTENER_SLOT_BYTES + 1), 9, '127.0.0.1', (e) => errors.push(e?.message ?? 'ok'));
  sock.send(Buffer.from('x'), 9, 'not-an-ip', (e) => errors.push(e?.message ?? 'ok'));
  assert.equal(errors.length, 2);
  assert.ok(errors.every((e) => e !== 'ok'));
  sock.close();
  sock.send(Buffer.from('x'), 9, '127.0.0.1', (e) => errors.push(e?.message ?? 'ok'));
  assert.match(errors[2] ?? '', /closed/);
});

test('two sockets share a port with reusePort; a second bind without it fails', { skip }, () => {
  const a = new BatchUdpSocket(lib!, '127.0.0.1', 0, true, false);
  const b = new BatchUdpSocket(lib!, '127.0.0.1', a.address().port, true, false);
  assert.throws(() => new BatchUdpSocket(lib!, '127.0.0.1', a.address().port, false, false), /EADDRINUSE|Address already in use/);
  a.close();
  b.close();
});

const continuations = [
  ['send', 'a send from a promise continuation during a batch does not overwrite the batch answers'],
  ['sendLater', 'sendLater from a promise continuation during a batch keeps every answer intact'],
] as const;
for (const [how, name] of continuations) {
  test(name, { skip }, async () => {
    const sock = new BatchUdpSocket(lib!, '127.0.0.1', 0, false, false);
    sock.on('message', (buf: Buffer, rinfo: dgram.RemoteInfo) => {
      sock.send([Buffer.from('re:'), buf], rinfo.port, rinfo.address);
      // Runs in the microtask drain right after the batch callback, before its answers are sent.
      void Promise.resolve().then(() => sock[how]([Buffer.from(`${how}:`), buf], rinfo.port, rinfo.address));
    });
    const client = await peer('udp4', '127.0.0.1');
    const got: string[] = [];
    const all = new Promise<void>((resolve) => client.on('message', (m) => { got.push(m.toString()); if (got.length === 200) resolve(); }));
    for (let i = 0; i < 100; i++) client.send(`m${i}`, sock.address().port, '127.0.0.1');
    await all;
    assert.deepEqual(new Set(got), new Set(Array.from({ length: 100 }, (_, i) => [`re:m${i}`, `${how}:m${i}`]).flat()));
    client.close();
    sock.close();
  });
}

test('sendLater holds sends made outside a batch until the end of the event-loop turn', { skip }, async () => {
  const sock = new BatchUdpSocket(lib!, '127.0.0.1', 0, false, false);
  const client = await peer('udp4', '127.0.0.1');
  const got: string[] = [];
  const all = new Promise<void>((resolve) => client.on('message', (m) => { got.push(m.toString()); if (got.length === 150) resolve(); }));
  for (let i = 0; i < 150; i++) sock.sendLater([Buffer.from('later:'), Buffer.from(String(i))], client.address().port, '127.0.0.1');
  // More than a batch of slots: the first ones went out when the slots filled, the rest wait.
  assert.ok(sock.stats().sent < 150);
  await all;
  assert.deepEqual(got, Array.from({ length: 150 }, (_, i) => `later:${i}`));
  client.close();
  sock.close();
});
