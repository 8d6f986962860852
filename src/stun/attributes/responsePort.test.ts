import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readResponsePort, responsePortValue } from './responsePort.ts';

describe('RESPONSE-PORT', () => {
  it('reads the port from the first 16 bits', () => {
    assert.equal(readResponsePort(Buffer.from('ffff0000', 'hex')), 65535);
    assert.equal(readResponsePort(Buffer.from('0d96abcd', 'hex')), 3478);
  });

  it('encodes a port', () => {
    assert.equal(responsePortValue(3478), 0x0d960000);
    assert.throws(() => responsePortValue(65536), { code: 'STUN_BAD_VALUE' });
  });

  it('refuses a value that is not 4 bytes', () => {
    assert.throws(() => readResponsePort(Buffer.from('0d96', 'hex')), { code: 'STUN_BAD_ATTRIBUTE' });
  });
});
