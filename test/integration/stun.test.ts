/**
 * The STUN server driven by real clients: coturn's turnutils_stunclient and
 * turnutils_natdiscovery, our own `p2pd nat-type`, raw UDP/TCP, malformed input, several workers.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import dgram from 'node:dgram';
import { startP2pd, P2PD_BIN, type P2pdProcess } from '../helpers/p2pd.ts';
import { freePort } from '../helpers/ports.ts';
import { udpTransaction, tcpTransaction, metricValue } from '../helpers/stunClient.ts';
import { loadUdpBatch } from '../../src/transport/batchGroup.ts';
import {
  Attr, MessageClass, Method, MessageWriter, messageType, newTransactionId, findAttr, attrValue,
  readXorAddress, readErrorCode, readUnknownAttributes, checkFingerprint, responsePortValue,
  readRealm, readNonce, longTermKey, checkMessageIntegrity,
} from '../../src/stun/index.ts';

const run = promisify(execFile);
const BINDING = messageType(Method.Binding, MessageClass.Request);

function bindingRequest(extra?: (w: MessageWriter) => void): Buffer {
  const w = new MessageWriter().reset(BINDING, newTransactionId());
  extra?.(w);
  return w.toBuffer();
}

for (const io of ['batch', 'dgram'] as const) describe(`STUN Binding over UDP and TCP (one worker, --udp-io ${io})`, { skip: io === 'batch' && !loadUdpBatch() ? 'udpbatch addon not built' : false }, () => {
  let p: P2pdProcess;
  before(async () => { p = await startP2pd({ args: ['--udp-io', io] }); });
  after(async () => { await p.stop(); });

  test("coturn's turnutils_stunclient gets its reflexive address", async () => {
    const { stdout } = await run('turnutils_stunclient', ['-p', String(p.port), '127.0.0.1']);
    assert.match(stdout, /UDP reflexive addr: 127\.0\.0\.1:\d+/);
    assert.ok(await metricValue(p.httpUrl, 'stun_requests_total{status="success"') >= 1);
  });

  test('answers over UDP with XOR-MAPPED-ADDRESS equal to the source, and FINGERPRINT when asked', async () => {
    const r = await udpTransaction(bindingRequest((w) => w.addFingerprint()), p.port);
    assert.ok(r);
    assert.equal(r.msg.type, messageType(Method.Binding, MessageClass.SuccessResponse));
    const xi = findAttr(r.msg, Attr.XorMappedAddress);
    assert.deepEqual(readXorAddress(attrValue(r.msg, xi), r.msg.transactionId), { family: 4, address: '127.0.0.1', port: r.local });
    assert.ok(findAttr(r.msg, Attr.Fingerprint) >= 0 && checkFingerprint(r.msg));
    const plain = await udpTransaction(bindingRequest(), p.port);
    assert.equal(findAttr(plain!.msg, Attr.Fingerprint), -1, 'no FINGERPRINT unless the request had one');
  });

  test('counts every answered Binding as a success, and drops a Binding whose FINGERPRINT does not match', async () => {
    const before = await metricValue(p.httpUrl, 'stun_requests_total{status="success"');
    const droppedBefore = await metricValue(p.httpUrl, 'stun_dropped_packets_total{reason="bad_fingerprint"');
    for (let i = 0; i < 10; i++) assert.ok(await udpTransaction(bindingRequest(i % 2 ? (w) => w.addFingerprint() : undefined), p.port));
    const bad = bindingRequest((w) => w.addFingerprint());
    bad[bad.length - 1]! ^= 1;
    assert.equal(await udpTransaction(bad, p.port, '127.0.0.1', 300), undefined, 'no answer to a bad FINGERPRINT');
    assert.equal(await metricValue(p.httpUrl, 'stun_requests_total{status="success"') - before, 10);
    assert.equal(await metricValue(p.httpUrl, 'stun_dropped_packets_total{reason="bad_fingerprint"') - droppedBefore, 1);
  });

  test('answers over TCP, with requests split across segments', async () => {
    const r = await tcpTransaction(bindingRequest(), p.port);
    const xi = findAttr(r.msg, Attr.XorMappedAddress);
    assert.deepEqual(readXorAddress(attrValue(r.msg, xi), r.msg.transactionId), { family: 4, address: '127.0.0.1', port: r.local });
  });

  test('an unknown comprehension-required attribute gets 420 with UNKNOWN-ATTRIBUTES', async () => {
    const r = await udpTransaction(bindingRequest((w) => { w.addAttr(0x7f01, Buffer.from([1, 2, 3, 4])); w.addAttr(0xc001, Buffer.alloc(4)); }), p.port);
    assert.ok(r);
    assert.equal(r.msg.type, messageType(Method.Binding, MessageClass.ErrorResponse));
    assert.equal(readErrorCode(attrValue(r.msg, findAttr(r.msg, Attr.ErrorCode))).code, 420);
    assert.deepEqual(readUnknownAttributes(attrValue(r.msg, findAttr(r.msg, Attr.UnknownAttributes))), [0x7f01]);
  });

  test('without --alt-ip, CHANGE-REQUEST is not understood (420): RFC 5780 is off', async () => {
    const r = await udpTransaction(bindingRequest((w) => w.addUint32(Attr.ChangeRequest, 0x6)), p.port);
    assert.equal(readErrorCode(attrValue(r!.msg, findAttr(r!.msg, Attr.ErrorCode))).code, 420);
  });

  test('malformed and random datagrams are dropped and counted, and the server keeps answering', async () => {
    const before = await metricValue(p.httpUrl, 'stun_dropped_packets_total{reason="malformed"');
    const s = dgram.createSocket('udp4');
    const junk: Buffer[] = [
      Buffer.from('0001000c2112a442000000000000000000000001', 'hex'), // length says 12, no body
      Buffer.from('000100042112a44200000000000000000000000100010008', 'hex'), // attribute overruns
      Buffer.from('0001000021120000000000000000000000000001', 'hex'), // bad cookie
    ];
    for (let i = 0; i < 200; i++) {
      const b = Buffer.alloc(20 + (i % 60));
      for (let k = 0; k < b.length; k++) b[k] = (i * 131 + k * 17) & 0xff;
      b[0] = i % 2; b.writeUInt32BE(0x2112a442, 4); b.writeUInt16BE((i * 4) & 0xffff, 2);
      junk.push(b);
    }
    await new Promise<void>((resolve) => s.bind(0, () => resolve()));
    for (const j of junk) s.send(j, p.port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 300));
    s.close();
    const after = await metricValue(p.httpUrl, 'stun_dropped_packets_total{reason="malformed"');
    assert.ok(after - before >= 3, `dropped ${after - before}`);
    assert.ok(await udpTransaction(bindingRequest(), p.port), 'still answering');
    assert.equal(p.child.exitCode, null);
  });

  test('a TCP stream of garbage is closed, others are unaffected', async () => {
    const net = await import('node:net');
    await new Promise<void>((resolve) => {
      const sock = net.connect(p.port, '127.0.0.1', () => sock.write(Buffer.alloc(64, 0xff)));
      sock.on('close', () => resolve());
      sock.on('error', () => undefined);
    });
    assert.ok(await tcpTransaction(bindingRequest(), p.port));
  });

  test('/healthz, /readyz and /metrics answer', async () => {
    assert.equal((await fetch(`${p.httpUrl}/healthz`)).status, 200);
    assert.deepEqual(await (await fetch(`${p.httpUrl}/readyz`)).json(), { status: 'ready' });
    const r = await fetch(`${p.httpUrl}/nope`);
    assert.equal(r.status, 404);
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'NOT_FOUND');
  });
});

describe('STUN over IPv6', () => {
  test('answers a client on ::1 with an IPv6 XOR-MAPPED-ADDRESS', async (t) => {
    const probe = dgram.createSocket('udp6');
    const hasV6 = await new Promise<boolean>((resolve) => { probe.once('error', () => resolve(false)); probe.bind(0, '::1', () => resolve(true)); });
    probe.close();
    if (!hasV6) return t.skip('no IPv6 loopback on this host');
    const p = await startP2pd({ args: ['--listen', '::1', '--http', `127.0.0.1:${await freePort()}`] });
    try {
      const r = await udpTransaction(bindingRequest(), p.port, '::1');
      assert.ok(r);
      assert.deepEqual(readXorAddress(attrValue(r.msg, findAttr(r.msg, Attr.XorMappedAddress)), r.msg.transactionId), { family: 6, address: '::1', port: r.local });
      const tcp = await tcpTransaction(bindingRequest(), p.port, '::1');
      assert.equal(readXorAddress(attrValue(tcp.msg, findAttr(tcp.msg, Attr.XorMappedAddress)), tcp.msg.transactionId).address, '::1');
    } finally {
      await p.stop();
    }
  });
});

describe('RFC 5780 with --alt-ip 127.0.0.2', () => {
  let p: P2pdProcess;
  before(async () => { p = await startP2pd({ args: ['--alt-ip', '127.0.0.2'] }); });
  after(async () => { await p.stop(); });

  test("coturn's turnutils_natdiscovery -m -f reports endpoint-independent mapping and filtering", async () => {
    const { stdout } = await run('turnutils_natdiscovery', ['-m', '-f', '-p', String(p.port), '127.0.0.1']);
    assert.match(stdout, /NAT with Endpoint Independent Mapping!/);
    assert.match(stdout, /NAT with Endpoint Independent Filtering!/);
    assert.match(stdout, new RegExp(`Other addr: : 127\\.0\\.0\\.2:${p.port + 1}`));
  });

  test('CHANGE-REQUEST answers from the other IP and port, RESPONSE-PORT redirects the answer', async () => {
    const changed = await udpTransaction(bindingRequest((w) => w.addUint32(Attr.ChangeRequest, 0x6)), p.port);
    assert.ok(changed);
    assert.equal(changed.from.address, '127.0.0.2');
    assert.equal(changed.from.port, p.port + 1);
    const portOnly = await udpTransaction(bindingRequest((w) => w.addUint32(Attr.ChangeRequest, 0x2)), p.port);
    assert.deepEqual([portOnly!.from.address, portOnly!.from.port], ['127.0.0.1', p.port + 1]);

    const target = dgram.createSocket('udp4');
    const targetPort = await new Promise<number>((resolve) => target.bind(0, '127.0.0.1', () => resolve(target.address().port)));
    const got = new Promise<boolean>((resolve) => { target.once('message', () => resolve(true)); setTimeout(() => resolve(false), 1000); });
    const none = await udpTransaction(bindingRequest((w) => w.addUint32(Attr.ResponsePort, responsePortValue(targetPort))), p.port, '127.0.0.1', 500);
    assert.equal(none, undefined, 'the answer went to RESPONSE-PORT, not back to the sender');
    assert.ok(await got);
    target.close();
  });

  test('p2pd nat-type gives the same verdict against p2pd as against coturn with two IPs', async (t) => {
    const natType = async (port: number): Promise<Record<string, unknown>> =>
      JSON.parse((await run(process.execPath, [P2PD_BIN, 'nat-type', '--server', `127.0.0.1:${port}`, '--json', '--timeout-ms', '2000'])).stdout) as Record<string, unknown>;
    const ours = await natType(p.port);
    assert.equal(ours.mapping, 'endpoint-independent');
    assert.equal(ours.filtering, 'endpoint-independent');
    assert.equal(ours.type, 'open internet');

    const cport = await freeRfc5780Port();
    const coturn = spawn('turnserver', ['-n', '-L', '127.0.0.1', '-L', '127.0.0.2', '--listening-port', String(cport), '--no-tls', '--no-dtls', '--no-cli', '--realm', 'x', '--log-file', '/dev/null', '--pidfile', `/tmp/p2pd-test-ts-${cport}.pid`], { stdio: 'ignore' });
    t.after(() => { coturn.kill('SIGKILL'); });
    // coturn opens its four listeners one by one: ask nat-type only once each answers a Binding,
    // so a slow start cannot read as "unreachable" or as filtering.
    const listeners = [['127.0.0.1', cport], ['127.0.0.2', cport], ['127.0.0.1', cport + 1], ['127.0.0.2', cport + 1]] as const;
    for (const [host, port] of listeners) {
      let answered = false;
      for (let i = 0; i < 60 && !answered; i++) answered = (await udpTransaction(bindingRequest(), port, host, 250)) !== undefined;
      assert.ok(answered, `coturn answers on ${host}:${port}`);
    }
    // The filtering verdict rests on an answer that does not come within the timeout: on a loaded
    // machine a late one from coturn reads as filtering. A true difference stays over 3 tries.
    const keys = ['reachable', 'natted', 'mapping', 'filtering', 'type'];
    let theirs = await natType(cport);
    for (let tries = 1; tries < 3 && keys.some((k) => theirs[k] !== ours[k]); tries++) theirs = await natType(cport);
    for (const k of keys) assert.equal(theirs[k], ours[k], k);
  });
});

/**
 * A port free with the next one on both loopback addresses: coturn's RFC 5780 listeners take
 * port and port + 1 on each; a port + 1 another test holds would leave one of them unbound.
 */
async function freeRfc5780Port(): Promise<number> {
  const binds = (host: string, port: number): Promise<boolean> => new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => { s.close(); resolve(false); });
    s.bind(port, host, () => { s.close(); resolve(true); });
  });
  for (let i = 0; i < 50; i++) {
    const port = await freePort();
    if (port >= 65535) continue;
    const all = await Promise.all(['127.0.0.1', '127.0.0.2'].flatMap((h) => [binds(h, port), binds(h, port + 1)]));
    if (all.every(Boolean)) return port;
  }
  throw new Error('no port free together with the next one');
}

describe('several workers', () => {
  test('--workers 2 share the port and /metrics counts every worker', async () => {
    const p = await startP2pd({ workers: 2 });
    try {
      const n = 40;
      const answers = await Promise.all(Array.from({ length: n }, () => udpTransaction(bindingRequest(), p.port)));
      assert.equal(answers.filter(Boolean).length, n);
      assert.equal(await metricValue(p.httpUrl, 'stun_requests_total{status="success"'), n);
      const workers = (await run('pgrep', ['-P', String(p.child.pid)])).stdout.trim().split('\n').length;
      assert.ok(workers >= 2, `expected 2 worker processes, saw ${workers}`);
    } finally {
      assert.equal(await p.stop('SIGTERM'), 0, 'clean exit on SIGTERM');
    }
  });
});

describe('start-up validation', () => {
  test('a second p2pd on the ports of a running one stops with PORT_IN_USE instead of sharing them', async () => {
    const first = await startP2pd({ workers: 2 });
    try {
      const r = await run(process.execPath, [P2PD_BIN, 'serve', '--listen', '127.0.0.1', '--port', String(first.port), '--workers', '2', '--http', `127.0.0.1:${await freePort()}`, '--mqtt', `127.0.0.1:${await freePort()}`])
        .catch((e: { code: number; stderr: string }) => e);
      assert.equal((r as { code: number }).code, 2);
      assert.match((r as { stderr: string }).stderr, /PORT_IN_USE/);
      assert.ok(await udpTransaction(bindingRequest(), first.port), 'the first keeps answering');
    } finally {
      await first.stop();
    }
  });

  test('an unknown option stops the start with a clear message and exit code 2', async () => {
    const r = await run(process.execPath, [P2PD_BIN, 'serve', '--bogus', '1']).catch((e: { code: number; stderr: string }) => e);
    assert.equal((r as { code: number }).code, 2);
    assert.match((r as { stderr: string }).stderr, /unknown option --bogus.*CONFIG_UNKNOWN_OPTION/);
  });

  test('an invalid P2PD_* variable stops the start', async () => {
    const r = await run(process.execPath, [P2PD_BIN, 'serve'], { env: { ...process.env, P2PD_PORT: 'x' } }).catch((e: { code: number; stderr: string }) => e);
    assert.equal((r as { code: number }).code, 2);
    assert.match((r as { stderr: string }).stderr, /invalid value for --port/);
  });
});

describe('--secure-stun', () => {
  test('a Binding without credentials gets 401 with REALM and NONCE; with them, a signed answer', async () => {
    const p = await startP2pd({ args: ['--secure-stun', '--user', 'alice:wonder'] });
    try {
      const first = await udpTransaction(bindingRequest(), p.port);
      assert.ok(first);
      assert.equal(first.msg.type, messageType(Method.Binding, MessageClass.ErrorResponse));
      assert.equal(readErrorCode(attrValue(first.msg, findAttr(first.msg, Attr.ErrorCode))).code, 401);
      const realm = readRealm(attrValue(first.msg, findAttr(first.msg, Attr.Realm)));
      const nonce = readNonce(attrValue(first.msg, findAttr(first.msg, Attr.Nonce)));
      assert.equal(realm, 'p2pd');

      const key = longTermKey('alice', realm, 'wonder');
      const signed = (password: Buffer): Buffer => bindingRequest((w) => {
        w.addString(Attr.Username, 'alice');
        w.addString(Attr.Realm, realm);
        w.addString(Attr.Nonce, nonce);
        w.addMessageIntegrity(password);
      });
      const ok = await udpTransaction(signed(key), p.port);
      assert.ok(ok);
      assert.equal(ok.msg.type, messageType(Method.Binding, MessageClass.SuccessResponse));
      assert.equal(readXorAddress(attrValue(ok.msg, findAttr(ok.msg, Attr.XorMappedAddress)), ok.msg.transactionId).port, ok.local);
      assert.ok(checkMessageIntegrity(ok.msg, key), 'the answer is signed with the same key');

      const wrong = await udpTransaction(signed(longTermKey('alice', realm, 'guess')), p.port);
      assert.equal(readErrorCode(attrValue(wrong!.msg, findAttr(wrong!.msg, Attr.ErrorCode))).code, 401);
      assert.ok(await metricValue(p.httpUrl, 'turn_auth_failures_total') >= 2);
    } finally {
      await p.stop();
    }
  });
});
