import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { pino } from 'pino';
import { listenStream, replaceTlsCredentials } from '../transport/tcp.ts';
import { TlsReloader } from './tlsReload.ts';

const dir = mkdtempSync(join(tmpdir(), 'p2pd-tlsreload-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function pair(name: string): { cert: Buffer; key: Buffer } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', `/CN=${name}`, '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert: readFileSync(cert), key: readFileSync(key) };
}

async function servedCn(port: number): Promise<string> {
  const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
  try {
    await new Promise<void>((resolve, reject) => { s.once('secureConnect', resolve); s.once('error', reject); });
    return String(s.getPeerCertificate().subject.CN);
  } finally {
    s.destroy();
  }
}

test('a reload gives new connections the new pair; an unchanged pair is left alone; a bad pair is refused and the old one stays', async () => {
  const a = pair('a.test');
  const b = pair('b.test');
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  writeFileSync(certFile, a.cert);
  writeFileSync(keyFile, a.key);
  const listener = await listenStream({
    address: '127.0.0.1', port: 0, reusePort: false,
    tls: { cert: a.cert, key: a.key, handshakeTimeoutMs: 5000, onHandshakeError: () => undefined },
  }, (s) => s.end());
  try {
    const port = (listener.server.address() as { port: number }).port;
    const applied: string[] = [];
    const reloader = new TlsReloader({
      certFile, keyFile, log: pino({ level: 'silent' }),
      apply: (cert, key) => { replaceTlsCredentials(listener, cert, key); applied.push('x'); },
    });
    assert.equal(reloader.reload('SIGHUP'), 'unchanged');
    assert.equal(await servedCn(port), 'a.test');

    writeFileSync(certFile, b.cert);
    assert.equal(reloader.reload('SIGHUP'), 'error', "b's certificate with a's key do not belong together");
    assert.equal(await servedCn(port), 'a.test');
    writeFileSync(keyFile, b.key);
    assert.equal(reloader.reload('SIGHUP'), 'ok');
    assert.equal(await servedCn(port), 'b.test');

    for (const junk of ['', 'not pem', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n']) {
      writeFileSync(certFile, junk);
      assert.equal(reloader.reload('file change'), 'error', JSON.stringify(junk));
    }
    rmSync(keyFile);
    assert.equal(reloader.reload('SIGHUP'), 'error', 'a missing file');
    assert.equal(await servedCn(port), 'b.test');
    assert.equal(applied.length, 1);
    reloader.stop();
  } finally {
    await listener.close();
  }
});
