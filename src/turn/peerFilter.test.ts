import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerFilter } from './peerFilter.ts';

const deny = new PeerFilter();
const fam = (a: string): 4 | 6 => (a.includes(':') ? 6 : 4);

test('refuses every special-purpose range by default, in each spelling', () => {
  for (const a of ['0.0.0.0', '0.1.2.3', '10.0.0.1', '100.64.0.1', '100.127.255.255', '127.0.0.1', '169.254.169.254', '172.16.0.1',
    '172.31.255.255', '192.0.0.8', '192.0.2.1', '192.168.0.1', '198.18.0.1', '198.19.255.255', '198.51.100.1', '203.0.113.9',
    '224.0.0.1', '239.255.255.250', '240.0.0.1', '255.255.255.255',
    '::', '::1', '::127.0.0.1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '::ffff:169.254.169.254',
    '64:ff9b::7f00:1', '64:ff9b::a9fe:a9fe', '64:ff9b:1::1', '2002:7f00:1::', '2002:a00:1::1', '2002:c0a8:101::',
    'fc00::1', 'fdff::1', 'fe80::1', 'febf::1', 'fec0::1', 'ff02::1', 'ff0e::1', '2001:db8::1', '2001::1', '3fff::1', '100::1']) {
    assert.equal(deny.isAllowed(fam(a), a), false, a);
  }
});

test('allows public addresses, including public IPv4 embedded in IPv6', () => {
  for (const a of ['1.1.1.1', '8.8.8.8', '100.63.255.255', '100.128.0.0', '172.15.255.255', '172.32.0.0', '192.169.0.1', '223.255.255.255',
    '2606:4700:4700::1111', '2001:4860:4860::8888', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1']) {
    assert.equal(deny.isAllowed(fam(a), a), true, a);
  }
  assert.equal(deny.isAllowed(4, 'not an ip'), false);
  assert.equal(deny.isAllowed(6, 'zz::1'), false);
});

test('--allow-peer opens a range, and an IPv4 range its embedded IPv6 forms too', () => {
  const f = new PeerFilter([{ family: 4, address: '127.0.0.0', prefix: 8 }, { family: 6, address: 'fd00::', prefix: 8 }, { family: 4, address: '10.1.0.0', prefix: 16 }]);
  for (const a of ['127.0.0.1', '127.9.9.9', '::ffff:127.0.0.1', '64:ff9b::7f00:1', '2002:7f00:1::', 'fd12::1', '10.1.2.3']) assert.equal(f.isAllowed(fam(a), a), true, a);
  for (const a of ['10.2.0.1', '::1', 'fc00::1', '169.254.169.254']) assert.equal(f.isAllowed(fam(a), a), false, a);
});

test('--deny-peer closes a range, wins over --allow-peer, and covers the embedded IPv6 forms of an IPv4 range', () => {
  const f = new PeerFilter(
    [{ family: 4, address: '127.0.0.0', prefix: 8 }, { family: 6, address: 'fd00::', prefix: 8 }],
    [{ family: 4, address: '127.0.0.2', prefix: 32 }, { family: 4, address: '8.8.8.0', prefix: 24 }, { family: 6, address: 'fd00:1::', prefix: 32 }],
  );
  for (const a of ['127.0.0.2', '8.8.8.8', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1', '::ffff:127.0.0.2', 'fd00:1::5']) {
    assert.equal(f.isAllowed(fam(a), a), false, a);
    assert.equal(f.judge(fam(a), a), 'deny_peer', a);
  }
  for (const a of ['127.0.0.1', '8.8.4.4', 'fd00:2::1']) assert.equal(f.isAllowed(fam(a), a), true, a);
  assert.equal(f.judge(4, '127.0.0.1'), 'allowed_range');
  assert.equal(f.judge(4, '10.0.0.1'), 'denied');
  assert.equal(f.judge(4, '1.1.1.1'), 'allowed');
});
