/**
 * RFC 8656 against a real `p2pd serve`, driven by our own TURN client: the methods, their error
 * codes, credentials (static, REST, SHA-256), nonces, EVEN-PORT/RESERVATION-TOKEN, address
 * families, TCP and TLS.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { P2pdProcess } from '../helpers/p2pd.ts';
import { freePort } from '../helpers/ports.ts';
import { metricValue } from '../helpers/stunClient.ts';
import { TurnTestClient, TurnError, UdpPeer, startTurnServer } from '../helpers/turnClient.ts';
import {
  Attr, MessageClass, MessageWriter, Method, attrValue, findAttr, messageType, newTransactionId, readErrorCode,
  readPasswordAlgorithms, readUnknownAttributes, requestedTransportValue, PasswordAlgorithm,
} from '../../src/stun/index.ts';
import { mintTurnRestCredentials } from '../../src/auth/turnRest.ts';

const SECRET = 'test-secret';
const ALLOCATE = messageType(Method.Allocate, MessageClass.Request);

async function rejects(p: Promise<unknown>, code: number): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof TurnError, String(err));
    assert.equal(err.code, code);
    return true;
  });
}

describe('TURN protocol (one worker)', () => {
  let p: P2pdProcess;
  let tlsPort: number;
  let dir: string;
  const clients: TurnTestClient[] = [];
  const peers: UdpPeer[] = [];
  const client = async (opts: Partial<Parameters<typeof TurnTestClient.connect>[0]> = {}): Promise<TurnTestClient> => {
    const c = await TurnTestClient.connect({ port: opts.transport === 'tls' ? tlsPort : p.port, username: 'alice', password: 'wonderland', ...opts });
    clients.push(c);
    return c;
  };
  const peer = async (host?: string): Promise<UdpPeer> => {
    const x = await UdpPeer.bind(host);
    peers.push(x);
    return x;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pd-turn-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    tlsPort = await freePort();
    p = await startTurnServer({
      args: ['--roles', 'stun,turn', '--user', 'alice:wonderland', '--user', 'bob:builder', '--auth-secret', SECRET,
        '--allow-peer', '127.0.0.0/8', '--allow-peer', '::1/128', '--max-lifetime', '1800', '--nonce-lifetime', '3',
        '--tls-port', String(tlsPort), '--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')],
    });
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const x of peers) x.close();
    await p.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('an Allocate without credentials gets 401 with REALM, NONCE and PASSWORD-ALGORITHMS', async () => {
    const c = await client();
    const w = new MessageWriter().reset(ALLOCATE, newTransactionId()).addUint32(Attr.RequestedTransport, requestedTransportValue(17));
    const res = await c.transact(w.toBuffer());
    assert.ok(res);
    assert.equal(readErrorCode(attrValue(res, findAttr(res, Attr.ErrorCode))).code, 401);
    assert.ok(findAttr(res, Attr.Realm) >= 0 && findAttr(res, Attr.Nonce) >= 0);
    assert.match(attrValue(res, findAttr(res, Attr.Nonce)).toString(), /^obMatJos2/);
    const algos = readPasswordAlgorithms(attrValue(res, findAttr(res, Attr.PasswordAlgorithms))).map((a) => a.algorithm);
    assert.deepEqual(algos, [PasswordAlgorithm.SHA256, PasswordAlgorithm.MD5]);
    assert.equal(findAttr(res, Attr.MessageIntegrity), -1);
  });

  test('allocates, relays a Send indication to the peer and the answer back as a Data indication', async () => {
    const c = await client();
    const x = await peer();
    const a = await c.allocate();
    assert.equal(a.relayed.length, 1);
    assert.equal(a.relayed[0]?.address, '127.0.0.1');
    assert.equal(a.lifetime, 600, 'RFC 8656 default lifetime');
    assert.deepEqual(a.mapped, { family: 4, address: '127.0.0.1', port: c.localPort });
    c.sendIndication(x.address, Buffer.from('dropped: no permission yet'));
    await c.createPermission(x.address);
    c.sendIndication(x.address, Buffer.from('hello peer'));
    const got = await x.next();
    assert.equal(got?.data.toString(), 'hello peer');
    assert.equal(got?.from.port, a.relayed[0]?.port, 'the peer sees the relayed address');
    assert.equal(x.received.length, 0, 'the datagram without permission was dropped');
    x.socket.send('hello client', got.from.port, got.from.address);
    const back = await c.nextData();
    assert.equal(back?.data.toString(), 'hello client');
    assert.deepEqual(back?.peer, x.address);
  });

  test('ChannelBind, then ChannelData both ways, in order, without loss', async () => {
    const c = await client();
    const x = await peer();
    x.echo = true;
    await c.allocate();
    await c.channelBind(0x4001, x.address);
    for (let i = 0; i < 200; i++) c.sendChannelData(0x4001, Buffer.from(`msg ${i}`));
    for (let i = 0; i < 200; i++) {
      const r = await c.nextData();
      assert.equal(r?.channel, 0x4001);
      assert.equal(r?.data.toString(), `msg ${i}`);
    }
    // Refreshing the same binding is fine; RFC 5766 numbers up to 0x7FFF are accepted.
    await c.channelBind(0x4001, x.address);
    const y = await peer();
    await c.channelBind(0x7ffe, y.address);
    await rejects(c.channelBind(0x4001, y.address), 400);
    await rejects(c.channelBind(0x4002, x.address), 400);
    await rejects(c.channelBind(0x3fff, { family: 4, address: '127.0.0.1', port: 9 }), 400);
  });

  test('a second Allocate on a 5-tuple gets 437; a retransmission of the first gets its success again', async () => {
    const c = await client();
    const first = await c.allocate();
    await rejects(c.allocate(), 437);
    // Resend the exact request that created the allocation (same transaction id).
    const w = new MessageWriter().reset(ALLOCATE, first.response.transactionId);
    w.addUint32(Attr.RequestedTransport, requestedTransportValue(17));
    c.addCredentials(w);
    const again = await c.transact(w.toBuffer());
    assert.equal(again?.cls, MessageClass.SuccessResponse);
  });

  test('Refresh caps the lifetime at --max-lifetime; LIFETIME 0 deletes; then 437', async () => {
    const c = await client();
    await c.allocate({ lifetime: 5000 }).then((a) => assert.equal(a.lifetime, 1800));
    assert.equal(await c.refresh(100), 100);
    assert.equal(await c.refresh(99999), 1800);
    assert.equal(await c.refresh(0), 0);
    await rejects(c.refresh(100), 437);
    await rejects(c.createPermission({ family: 4, address: '127.0.0.1', port: 1 }), 437);
  });

  test('REQUESTED-TRANSPORT: TCP gets 442, none gets 400; unknown attributes get 420', async () => {
    const c = await client();
    await rejects(c.allocate({ transport: 6 }), 442);
    await assert.rejects(c.request(Method.Allocate), (e: unknown) => e instanceof TurnError && e.code === 400);
    const err = await c.allocate({ extra: (w) => w.addAttr(0x7777, Buffer.alloc(4)) }).catch((e: unknown) => e);
    assert.ok(err instanceof TurnError && err.code === 420);
    assert.deepEqual(readUnknownAttributes(attrValue(err.response, findAttr(err.response, Attr.UnknownAttributes))), [0x7777]);
    assert.ok(findAttr(err.response, Attr.MessageIntegrity) >= 0, 'answers to authenticated requests carry MESSAGE-INTEGRITY');
  });

  test('a wrong password gets 401 and is counted; another user on the 5-tuple gets 441', async () => {
    const before = await metricValue(p.httpUrl, 'turn_auth_failures_total{reason="bad_integrity"');
    const bad = await client({ password: 'nope' });
    await rejects(bad.allocate(), 401);
    assert.ok((await metricValue(p.httpUrl, 'turn_auth_failures_total{reason="bad_integrity"')) > before);
    const c = await client();
    await c.allocate();
    // Same socket, other user: hand-build a Refresh with bob's key.
    const bob = await client({ username: 'bob', password: 'builder' });
    await bob.allocate();
    const { realm, nonce } = c.credentials;
    const { longTermKey } = await import('../../src/stun/index.ts');
    const w = new MessageWriter().reset(messageType(Method.Refresh, MessageClass.Request), newTransactionId());
    w.addString(Attr.Username, 'bob').addString(Attr.Realm, realm).addString(Attr.Nonce, nonce);
    w.addMessageIntegrity(longTermKey('bob', realm, 'builder'));
    const res = await c.transact(w.toBuffer());
    assert.ok(res);
    assert.equal(readErrorCode(attrValue(res, findAttr(res, Attr.ErrorCode))).code, 441);
  });

  test('a stale nonce gets 438 with a fresh one, which then works', async () => {
    const c = await client();
    await c.allocate();
    await sleep(4200); // --nonce-lifetime 3
    c.errors.length = 0;
    assert.equal(await c.refresh(300), 300);
    assert.deepEqual(c.errors, [438]);
  });

  test('TURN REST credentials (docs/reference.md "HTTP API") work; expired ones get 401', async () => {
    const good = mintTurnRestCredentials(SECRET, 'session-1', Date.now() / 1000 + 600);
    const c = await client({ username: good.username, password: good.credential });
    await c.allocate();
    const old = mintTurnRestCredentials(SECRET, 'session-1', Date.now() / 1000 - 1);
    await rejects((await client({ username: old.username, password: old.credential })).allocate(), 401);
    const forged = mintTurnRestCredentials('other-secret', 'session-1', Date.now() / 1000 + 600);
    await rejects((await client({ username: forged.username, password: forged.credential })).allocate(), 401);
  });

  test('SHA-256 keys with MESSAGE-INTEGRITY-SHA256 (RFC 8489 §9.2)', async () => {
    const c = await client({ sha256: true });
    const a = await c.allocate();
    assert.ok(findAttr(a.response, Attr.MessageIntegritySha256) >= 0);
    assert.equal(await c.refresh(120), 120);
  });

  test('EVEN-PORT with R reserves the next port for the RESERVATION-TOKEN; misuse gets 400 and 508', async () => {
    const c1 = await client();
    const a1 = await c1.allocate({ evenPort: true, reserveNext: true });
    const port = a1.relayed[0]!.port;
    assert.equal(port % 2, 0);
    assert.ok(a1.token);
    const c2 = await client();
    const a2 = await c2.allocate({ token: a1.token });
    assert.equal(a2.relayed[0]?.port, port + 1);
    await rejects((await client()).allocate({ token: a1.token }), 508);
    await rejects((await client()).allocate({ token: a1.token, evenPort: true }), 400);
    const c3 = await client();
    assert.equal((await c3.allocate({ evenPort: true })).relayed[0]!.port % 2, 0);
  });

  test('IPv6: REQUESTED-ADDRESS-FAMILY gives a relay on ::1 that reaches an IPv6 peer; families must match (443)', async () => {
    const c = await client();
    const x = await peer('::1');
    const a = await c.allocate({ family: 6 });
    assert.equal(a.relayed[0]?.family, 6);
    assert.equal(a.relayed[0]?.address, '::1');
    await rejects(c.createPermission({ family: 4, address: '127.0.0.1', port: 5 }), 443);
    await c.channelBind(0x4100, x.address);
    c.sendChannelData(0x4100, Buffer.from('over v6'));
    assert.equal((await x.next())?.data.toString(), 'over v6');

    const d = await client();
    const both = await d.allocate({ additionalFamily: 6 });
    assert.deepEqual(both.relayed.map((r) => r.family), [4, 6]);
    await rejects((await client()).allocate({ additionalFamily: 4 }), 400);
    await rejects((await client()).allocate({ family: 6, additionalFamily: 6 }), 400);
  });

  test('DONT-FRAGMENT is accepted', async () => {
    const c = await client();
    await c.allocate({ dontFragment: true });
  });

  test('over TCP: ChannelData is padded both ways; closing the connection deletes the allocation', async () => {
    const active = await metricValue(p.httpUrl, 'turn_sessions_active');
    const c = await client({ transport: 'tcp' });
    const x = await peer();
    const y = await peer();
    x.echo = true;
    const a = await c.allocate();
    await c.channelBind(0x4abc, x.address);
    c.sendChannelData(0x4abc, Buffer.from('odd length!')); // 11 bytes: 1 byte of padding
    c.sendChannelData(0x4abc, Buffer.from('second'));
    assert.equal((await c.nextData())?.data.toString(), 'odd length!');
    assert.equal((await c.nextData())?.data.toString(), 'second');
    await c.createPermission(y.address);
    y.socket.send('via a Data indication', a.relayed[0]!.port, '127.0.0.1');
    const d = await c.nextData();
    assert.equal(d?.data.toString(), 'via a Data indication');
    assert.deepEqual(d?.peer, y.address);
    assert.equal(await metricValue(p.httpUrl, 'turn_sessions_active'), active + 1);
    c.close();
    for (let i = 0; i < 40 && (await metricValue(p.httpUrl, 'turn_sessions_active')) !== active; i++) await sleep(50);
    assert.equal(await metricValue(p.httpUrl, 'turn_sessions_active'), active);
  });

  test('over TLS on --tls-port', async () => {
    const c = await client({ transport: 'tls' });
    const x = await peer();
    x.echo = true;
    await c.allocate();
    await c.channelBind(0x4002, x.address);
    c.sendChannelData(0x4002, Buffer.from('through tls'));
    assert.equal((await c.nextData())?.data.toString(), 'through tls');
  });

  test('repeated 401s from one source are rate-limited; other sources are not', async () => {
    const c = await client({ password: 'guess', localAddress: '127.0.0.9' });
    let silent = 0;
    for (let i = 0; i < 40; i++) {
      const r = await c.allocate().catch((e: unknown) => e);
      if (r instanceof Error && !(r instanceof TurnError)) silent++;
      if (silent > 0) break;
    }
    assert.ok(silent > 0, 'the server stopped answering the guesser');
    assert.ok(await metricValue(p.httpUrl, 'turn_auth_failures_total{reason="rate_limited"') > 0);
    await (await client({ localAddress: '127.0.0.10' })).allocate();
  });
});
