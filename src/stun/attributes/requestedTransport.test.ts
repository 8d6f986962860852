import assert from 'node:assert/strict';
import { it } from 'node:test';
import { TransportProtocol, readRequestedTransport, requestedTransportValue } from './requestedTransport.ts';

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const BAD = { name: 'StunDecodeError', code: 'STUN_BAD_ATTRIBUTE' };

it('REQUESTED-TRANSPORT is the protocol in the first byte', () => {
  assert.equal(readRequestedTransport(u32(requestedTransportValue(TransportProtocol.UDP))), 17);
  assert.equal(readRequestedTransport(Buffer.from('06000000', 'hex')), TransportProtocol.TCP);
  assert.throws(() => readRequestedTransport(Buffer.from('11', 'hex')), BAD);
});
