/**
 * Operations against real `p2pd serve` processes (docs/operations.md): the --config file, secret
 * rotation (a TURN REST credential and a token of the previous secret), and reloading the TLS
 * certificate on SIGHUP and on a change of the files while a TURN-over-TLS allocation relays.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { P2PD_BIN, type P2pdProcess } from '../helpers/p2pd.ts';
import { freePort } from '../helpers/ports.ts';
import { TurnError, TurnTestClient, UdpPeer, startTurnServer, startTurnServers } from '../helpers/turnClient.ts';
import { Attr, MessageClass, MessageWriter, Method, attrValue, findAttr, messageType, newTransactionId, readRealm, requestedTransportValue } from '../../src/stun/index.ts';
import { mintTurnRestCredentials, turnRestPassword } from '../../src/auth/turnRest.ts';
import { createHs256Signer } from '../../src/auth/token.ts';

const dir = mkdtempSync(join(tmpdir(), 'p2pd-ops-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function refused(p: Promise<unknown>, code: number): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof TurnError && err.code === code);
}

/** Runs `p2pd serve` expecting it to stop at start; resolves with its exit code and stderr. */
function serveFails(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [P2PD_BIN, 'serve', ...args], { timeout: 60_000 }, (err, _stdout, stderr) => {
      resolve({ code: err ? (err as { code?: number }).code ?? null : 0, stderr });
    });
  });
}

describe('--config FILE', () => {
  let p: P2pdProcess | undefined;
  const clients: TurnTestClient[] = [];
  after(async () => {
    for (const c of clients) c.close();
    await p?.stop();
  });

  test('p2pd serve --config F takes its settings, lists included; an option on the command line wins over it', async () => {
    const f = join(dir, 'p2pd.yaml');
    writeFileSync(f, 'roles: stun,turn\nrealm: file-realm\nregion: file-region\nuser:\n  - alice:from-file\n  - bob:also-from-file\nmax-lifetime: 1200\n');
    p = await startTurnServer({ args: ['--config', f, '--max-lifetime', '900'] });
    const bob = await TurnTestClient.connect({ port: p.port, username: 'bob', password: 'also-from-file' });
    clients.push(bob);
    const a = await bob.allocate({ lifetime: 3000 });
    assert.equal(a.lifetime, 900, '--max-lifetime on the command line beat the file');
    // The 401 challenge names the file's realm.
    const w = new MessageWriter().reset(messageType(Method.Allocate, MessageClass.Request), newTransactionId());
    w.addUint32(Attr.RequestedTransport, requestedTransportValue(17));
    const challenge = await bob.transact(w.toBuffer());
    assert.ok(challenge);
    assert.equal(readRealm(attrValue(challenge, findAttr(challenge, Attr.Realm))), 'file-realm');
    const mallory = await TurnTestClient.connect({ port: p.port, username: 'alice', password: 'wrong' });
    clients.push(mallory);
    await refused(mallory.allocate(), 401);
  });

  test('a file with an unknown key or broken YAML stops p2pd serve with status 2 and says where', async () => {
    const typo = join(dir, 'typo.yaml');
    writeFileSync(typo, 'port: 3478\nalow-peer: [10.0.0.0/8]\n');
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'port: 3478\nallow-peer: [10.0.0.0/8,\n');
    const [a, b] = await Promise.all([serveFails(['--config', typo]), serveFails(['--config', broken])]);
    assert.equal(a.code, 2, a.stderr);
    assert.match(a.stderr, /unknown key "alow-peer" in .*typo\.yaml line 2 \(did you mean allow-peer\?\).*\[CONFIG_UNKNOWN_OPTION\]/);
    assert.equal(b.code, 2, b.stderr);
    assert.match(b.stderr, /broken\.yaml: not valid YAML: .* at line 3, column 1 \[CONFIG_FILE_INVALID\]/);
  });
});

describe('secret rotation', () => {
  const OLD = 'turn-secret-2025';
  const NEW = 'turn-secret-2026';
  const JOLD = 'jwt-secret-2025';
  const JNEW = 'jwt-secret-2026';
  const started: P2pdProcess[] = [];
  const clients: TurnTestClient[] = [];
  let rotating: P2pdProcess;
  let onlyNew: P2pdProcess;

  before(async () => {
    const nodes = await startTurnServers([
      { args: ['--auth-secret', NEW, '--auth-secret-previous', OLD, '--jwt-secret', JNEW, '--jwt-secret-previous', JOLD] },
      // The same current secrets, one of them from the environment, and no previous ones.
      { args: ['--auth-secret', NEW], env: { P2PD_JWT_SECRET: JNEW } },
    ], started);
    rotating = nodes[0] as P2pdProcess;
    onlyNew = nodes[1] as P2pdProcess;
  });
  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(started.map((s) => s.stop()));
  });

  const allocate = async (node: P2pdProcess, secret: string): Promise<unknown> => {
    const cred = mintTurnRestCredentials(secret, '', Date.now() / 1000 + 600, 'app_1');
    const c = await TurnTestClient.connect({ port: node.port, username: cred.username, password: cred.credential });
    clients.push(c);
    return c.allocate();
  };

  test('a TURN REST credential minted with the previous secret allocates on a node given it, and is refused without it', async () => {
    await allocate(rotating, OLD);
    await refused(allocate(onlyNew, OLD), 401);
    await allocate(rotating, NEW);
    await allocate(onlyNew, NEW);
  });

  test('a token signed with the previous JWT secret is accepted beside the new one, refused without it; new credentials use the new secret', async () => {
    const token = await createHs256Signer(JOLD).sign({ sub: 'app_1', role: 'app', devices: ['*'] });
    const ok = await fetch(`${rotating.httpUrl}/v1/ice-servers`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
    const body = await ok.json() as { iceServers: { urls: string[]; username?: string; credential?: string }[] };
    const turn = body.iceServers.find((s) => s.username !== undefined);
    assert.ok(turn?.username && turn.credential, JSON.stringify(body));
    assert.equal(turn.credential, turnRestPassword(NEW, turn.username), 'minted with the current secret, never the previous one');
    const no = await fetch(`${onlyNew.httpUrl}/v1/ice-servers`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(no.status, 401);
    assert.equal(((await no.json()) as { error: { code: string } }).error.code, 'TOKEN_INVALID');
  });
});

describe('reloading the TLS certificate (two workers)', () => {
  let p: P2pdProcess;
  let tlsPort: number;
  const certFile = join(dir, 'tls', 'cert.pem');
  const keyFile = join(dir, 'tls', 'key.pem');
  const clients: TurnTestClient[] = [];
  const peers: UdpPeer[] = [];
  let live: TurnTestClient;
  let peer: UdpPeer;

  /** A fresh self-signed pair for CN=`name`, written beside the live files. */
  const pair = (name: string): { cert: string; key: string } => {
    const out = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', `/CN=${name}`, '-keyout', out.key, '-out', out.cert], { stdio: 'ignore' });
    return out;
  };
  /** Puts a pair in place as a renewal does: each file replaced whole by a rename. */
  const install = (name: string): void => {
    const { cert, key } = pair(name);
    renameSync(key, `${keyFile}.new`);
    renameSync(cert, `${certFile}.new`);
    renameSync(`${keyFile}.new`, keyFile);
    renameSync(`${certFile}.new`, certFile);
  };
  /** The CN of the certificate a new TLS connection is shown. */
  const served = async (): Promise<string> => {
    const s = tls.connect({ host: '127.0.0.1', port: tlsPort, rejectUnauthorized: false });
    try {
      await new Promise<void>((resolve, reject) => { s.once('secureConnect', resolve); s.once('error', reject); });
      return String(s.getPeerCertificate().subject.CN);
    } finally {
      s.destroy();
    }
  };
  /**
   * Waits until `want` consecutive new connections see CN=`cn` (with two workers behind one
   * port, several connections are needed to meet both); bounded.
   */
  const until = async (cn: string, want = 8): Promise<void> => {
    let run = 0;
    const seen: string[] = [];
    for (let i = 0; i < 300 && run < want; i++) {
      const got = await served();
      seen.push(got);
      run = got === cn ? run + 1 : 0;
      if (run === 0) await sleep(50);
    }
    assert.equal(run, want, `new connections saw ${seen.slice(-12).join(', ')}`);
  };
  /** The live allocation relays both ways. */
  const relays = async (text: string): Promise<void> => {
    live.sendIndication(peer.address, Buffer.from(text));
    const got = await peer.next(5000);
    assert.equal(got?.data.toString(), text);
    peer.socket.send(`${text} back`, got.from.port, got.from.address);
    assert.equal((await live.nextData(5000))?.data.toString(), `${text} back`);
  };
  const errorsLogged = (): number => p.output().split('TLS certificate reload failed').length - 1;
  const waitErrors = async (moreThan: number): Promise<void> => {
    for (let i = 0; i < 200 && errorsLogged() <= moreThan; i++) await sleep(50);
    assert.ok(errorsLogged() > moreThan, p.output());
  };

  before(async () => {
    execFileSync('mkdir', ['-p', join(dir, 'tls')]);
    install('old.test');
    tlsPort = await freePort();
    p = await startTurnServer({
      workers: 2,
      args: ['--roles', 'stun,turn', '--user', 'alice:wonderland', '--allow-peer', '127.0.0.0/8',
        '--tls-port', String(tlsPort), '--tls-cert', certFile, '--tls-key', keyFile],
    });
    live = await TurnTestClient.connect({ port: tlsPort, transport: 'tls', username: 'alice', password: 'wonderland' });
    clients.push(live);
    peer = await UdpPeer.bind();
    peers.push(peer);
    await live.allocate();
    await live.createPermission(peer.address);
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const x of peers) x.close();
    await p.stop();
  });

  test('SIGHUP after a renewal: new TLS connections get the new certificate in every worker; the live TLS allocation keeps relaying', async () => {
    assert.equal(await served(), 'old.test');
    assert.equal(live.peerCertificate()?.subject.CN, 'old.test');
    await relays('before');
    install('new.test');
    // The file watch sees the renames too; whichever reloads first, the other finds the pair in
    // use. That SIGHUP alone reloads is shown by the next test, where the files do not change.
    p.child.kill('SIGHUP');
    await until('new.test');
    await relays('after');
    assert.equal(live.peerCertificate()?.subject.CN, 'old.test', 'the open connection keeps the session it negotiated');
    assert.equal(await live.refresh(600), 600, 'and its allocation answers requests');
    assert.equal(p.child.exitCode, null);
  });

  test('a bad certificate is logged as an error, on a change of the file and on SIGHUP, and the old one stays', async () => {
    const before = errorsLogged();
    writeFileSync(certFile, '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n');
    await waitErrors(before); // the watcher saw the change
    const watched = errorsLogged();
    p.child.kill('SIGHUP');
    await waitErrors(watched); // SIGHUP read it again
    await until('new.test', 4);
    await relays('still');
  });

  test('a change of the files alone, without SIGHUP, is picked up', async () => {
    install('watched.test');
    await until('watched.test');
    await relays('watched');
    assert.equal(live.peerCertificate()?.subject.CN, 'old.test');
  });
});
