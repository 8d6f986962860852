import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classify } from './classify.ts';

const natted = { reachable: true, natted: true } as const;

test('no answer at all is UDP blocked', () => {
  assert.equal(classify({ reachable: false, natted: false, mapping: undefined, filtering: undefined }), 'UDP blocked');
});

test('no NAT with open filtering is open internet, with filtering a symmetric UDP firewall', () => {
  assert.equal(classify({ reachable: true, natted: false, mapping: 'endpoint-independent', filtering: 'endpoint-independent' }), 'open internet');
  assert.equal(classify({ reachable: true, natted: false, mapping: 'endpoint-independent', filtering: 'address-and-port-dependent' }), 'symmetric UDP firewall');
});

test('endpoint-independent mapping gives the cone types by filtering', () => {
  assert.equal(classify({ ...natted, mapping: 'endpoint-independent', filtering: 'endpoint-independent' }), 'full cone');
  assert.equal(classify({ ...natted, mapping: 'endpoint-independent', filtering: 'address-dependent' }), 'restricted cone');
  assert.equal(classify({ ...natted, mapping: 'endpoint-independent', filtering: 'address-and-port-dependent' }), 'port-restricted cone');
});

test('any dependent mapping is symmetric whatever the filtering', () => {
  for (const mapping of ['address-dependent', 'address-and-port-dependent'] as const) {
    assert.equal(classify({ ...natted, mapping, filtering: 'endpoint-independent' }), 'symmetric');
  }
});
