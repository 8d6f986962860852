import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RTCDtlsTransport } from 'werift';
import { handshakeInMemory, warmUp } from './weriftWarmUp.ts';

test('the warm-up completes a DTLS handshake in memory, makes the certificate, and runs once per process', async () => {
  await handshakeInMemory();
  assert.ok(RTCDtlsTransport.localCertificate, 'werift\'s process certificate exists');
  const first = warmUp();
  assert.equal(warmUp(), first, 'one warm-up per process');
  await first;
});
