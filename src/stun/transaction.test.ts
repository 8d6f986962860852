import assert from 'node:assert/strict';
import { it } from 'node:test';
import { newTransactionId } from './transaction.ts';

it('makes 12-byte transaction ids that differ', () => {
  const a = newTransactionId();
  assert.equal(a.length, 12);
  assert.notDeepEqual(a, newTransactionId());
});
