import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadUdpBatch } from '../transport/batchGroup.ts';
import { createRelayIo, type RelayIo } from './relayPorts.ts';

interface Got { owner: string; data: string; family: 4 | 6; ip4: number; address: string; port: number }

async function exercise(io: RelayIo<string>, got: Got[]): Promise<void> {
  const peer = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => peer.bind(0, '127.0.0.1', resolve));
  const peerPort = peer.address().port;
  const echo: { data: string; port: number }[] = [];
  peer.on('message', (m, r) => echo.push({ data: m.toString(), port: r.port }));
  const relayPort = 15000 + Math.floor(Math.random() * 15000);
  const r = await io.open(4, '127.0.0.1', relayPort, 'alloc-1');
  try {
    await assert.rejects(io.open(4, '127.0.0.1', relayPort, 'alloc-2'), (e: NodeJS.ErrnoException) => e.code === 'EADDRINUSE');
    const payload = Buffer.from('xxhello peerxx');
    for (let i = 0; i < 100; i++) r.send(payload, 2, 10, peerPort, 0x7f000001, '127.0.0.1');
    for (let i = 0; i < 50 && echo.length < 100; i++) await sleep(10);
    assert.equal(echo.length, 100);
    assert.ok(echo.every((e) => e.data === 'hello peer' && e.port === relayPort));
    for (let i = 0; i < 100; i++) peer.send(`from peer ${i}`, relayPort, '127.0.0.1');
    for (let i = 0; i < 50 && got.length < 100; i++) await sleep(10);
    assert.equal(got.length, 100);
    assert.deepEqual(got[7], { owner: 'alloc-1', data: 'from peer 7', family: 4, ip4: 0x7f000001, address: got[7]!.address, port: peerPort });
    r.close();
    peer.send('after close', relayPort, '127.0.0.1');
    await sleep(50);
    assert.equal(got.length, 100, 'a closed relay socket delivers nothing');
    // The port is free again.
    const again = await io.open(4, '127.0.0.1', relayPort, 'alloc-3');
    again.close();
  } finally {
    r.close();
    peer.close();
  }
}

for (const kind of ['batch', 'dgram'] as const) {
  const skip = kind === 'batch' && !loadUdpBatch() ? 'the udpbatch addon is not built (npm run build:native)' : false;
  test(`${kind} relay sockets send to and receive from peers, refuse a taken port, close cleanly`, { skip }, async () => {
    const got: Got[] = [];
    const io = createRelayIo<string>(kind === 'batch' ? 'batch' : 'dgram', (owner, buf, off, len, family, ip4, address, port) => {
      got.push({ owner, data: buf.toString('utf8', off, off + len), family, ip4, address, port });
    });
    assert.equal(io.kind, kind);
    await exercise(io, got);
  });
}
