import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { REACH_TTL_MS, forgetIceReach, parseTurnUrl, probeIceServers, probeIceServersCached } from './turnReach.ts';

test('TURN URLs parse as RFC 7065 writes them', () => {
  assert.deepEqual(parseTurnUrl('turn:203.0.113.1:3478?transport=udp'), { url: 'turn:203.0.113.1:3478?transport=udp', host: '203.0.113.1', port: 3478, transport: 'udp' });
  assert.equal(parseTurnUrl('turn:203.0.113.1')?.port, 3478);
  assert.equal(parseTurnUrl('turn:203.0.113.1')?.transport, 'udp');
  assert.equal(parseTurnUrl('turn:[2001:db8::1]:3479?transport=tcp')?.host, '2001:db8::1');
  assert.equal(parseTurnUrl('turn:[2001:db8::1]:3479?transport=tcp')?.transport, 'tcp');
  assert.deepEqual(parseTurnUrl('turns:turn.example.com:443?transport=tcp'), { url: 'turns:turn.example.com:443?transport=tcp', host: 'turn.example.com', port: 443, transport: 'tls' });
  assert.equal(parseTurnUrl('turns:turn.example.com')?.port, 5349);
  assert.equal(parseTurnUrl('turns:turn.example.com?transport=udp'), undefined, 'DTLS is not spoken');
  assert.equal(parseTurnUrl('stun:203.0.113.1:3478'), undefined);
  assert.equal(parseTurnUrl('turn:203.0.113.1:99999'), undefined);
});

/** A STUN server's Binding success answer to `req` (RFC 8489 §5 header, no attributes). */
function bindingSuccess(req: Buffer): Buffer {
  const res = Buffer.from(req.subarray(0, 20));
  res.writeUInt16BE(0x0101, 0);
  res.writeUInt16BE(0, 2);
  return res;
}

async function udpServer(answer: boolean): Promise<{ port: number; heard: () => number; close: () => void }> {
  const s: UdpSocket = createSocket('udp4');
  let heard = 0;
  s.on('message', (m, r) => {
    heard++;
    if (answer) s.send(bindingSuccess(m), r.port, r.address);
  });
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  return { port: s.address().port, heard: () => heard, close: () => s.close() };
}

/** A TCP STUN server that answers Bindings, or one that accepts and says nothing (a middlebox). */
async function tcpServer(answer: boolean): Promise<{ port: number; close: () => void }> {
  const conns: Socket[] = [];
  const s: Server = createServer((c) => {
    conns.push(c);
    c.on('data', (d) => { if (answer) c.write(bindingSuccess(d)); });
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return { port: (s.address() as AddressInfo).port, close: () => { for (const c of conns) c.destroy(); s.close(); } };
}

const servers = (udp: number, tcp: number, stun = udp) => [
  { urls: [`stun:127.0.0.1:${stun}`] },
  { urls: [`turn:127.0.0.1:${udp}?transport=udp`, `turn:127.0.0.1:${tcp}?transport=tcp`], username: 'u', credential: 'c' },
];

test('the first TURN URL that answers is chosen: UDP when UDP gets through', async () => {
  const udp = await udpServer(true);
  const tcp = await tcpServer(true);
  try {
    const r = await probeIceServers(servers(udp.port, tcp.port));
    assert.equal(r.turn?.transport, 'udp');
    assert.equal(r.turn?.port, udp.port);
    assert.deepEqual([r.turn?.username, r.turn?.credential], ['u', 'c'], 'with its entry\'s credentials');
    assert.equal(r.stunSilent, false);
  } finally {
    udp.close();
    tcp.close();
  }
});

test('when UDP is never answered, TCP is chosen and the STUN server counts as silent', async () => {
  const udp = await udpServer(false);
  const tcp = await tcpServer(true);
  try {
    const r = await probeIceServers(servers(udp.port, tcp.port));
    assert.equal(r.turn?.transport, 'tcp');
    assert.equal(r.turn?.port, tcp.port);
    assert.equal(r.stunSilent, true);
    assert.ok(udp.heard() >= 1, 'UDP was asked');
  } finally {
    udp.close();
    tcp.close();
  }
});

test('a TCP port that accepts but never answers STUN is not taken; nothing answering leaves the list as it is', async () => {
  const udp = await udpServer(false);
  const mute = await tcpServer(false);
  try {
    const r = await probeIceServers(servers(udp.port, mute.port));
    assert.equal(r.turn, undefined);
    assert.equal(r.stunSilent, true);
  } finally {
    udp.close();
    mute.close();
  }
});

test('one TURN URL and no STUN: nothing to probe', async () => {
  const r = await probeIceServers([{ urls: 'turn:127.0.0.1:9?transport=udp', username: 'u', credential: 'c' }]);
  assert.deepEqual(r, { turn: undefined, stunSilent: false });
});

test('a verdict is remembered per URL list for REACH_TTL_MS, with each session\'s own credentials', async () => {
  forgetIceReach();
  const udp = await udpServer(true);
  const tcp = await tcpServer(true);
  let t = 0;
  try {
    const first = await probeIceServersCached(servers(udp.port, tcp.port), () => t);
    assert.equal(first.turn?.transport, 'udp');
    const heard = udp.heard();
    const other = servers(udp.port, tcp.port).map((s) => ('username' in s ? { ...s, username: 'u2', credential: 'c2' } : s));
    t = REACH_TTL_MS - 1;
    const again = await probeIceServersCached(other, () => t);
    assert.equal(udp.heard(), heard, 'no probe while the verdict stands');
    assert.deepEqual([again.turn?.url, again.turn?.username, again.turn?.credential], [first.turn?.url, 'u2', 'c2']);
    t = REACH_TTL_MS + 1;
    await probeIceServersCached(other, () => t);
    assert.ok(udp.heard() > heard, 'probed again once it is old');
  } finally {
    forgetIceReach();
    udp.close();
    tcp.close();
  }
});
