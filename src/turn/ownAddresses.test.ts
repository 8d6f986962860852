import { networkInterfaces } from 'node:os';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../config/config.ts';
import { ownAddresses, relayAddresses } from './ownAddresses.ts';

test('several relay addresses: each bound and told as its pair, all of them own addresses, each its own pool of live ports', () => {
  const config = loadConfig(['--listen', '10.0.0.1', '--relay-ip', '10.0.0.1,10.0.0.2', '--relay-ip6', 'fd00::1',
    '--external-ip', '203.0.113.1/10.0.0.1,203.0.113.2/10.0.0.2']);
  assert.deepEqual(relayAddresses(config), [
    { family: 4, bind: '10.0.0.1', advertised: '203.0.113.1' },
    { family: 4, bind: '10.0.0.2', advertised: '203.0.113.2' },
    { family: 6, bind: 'fd00::1', advertised: 'fd00::1' },
  ]);
  const own = ownAddresses(config);
  for (const a of ['10.0.0.1', '10.0.0.2', '203.0.113.1', '203.0.113.2', 'fd00::1']) assert.ok(own.own.includes(a), `${a} is an own address`);
  // By pool, in the book's order; the registry entry of the node lists them all (sessionServices.ts).
  assert.deepEqual(own.relay, [['203.0.113.1', '10.0.0.1'], ['203.0.113.2', '10.0.0.2'], ['fd00::1']]);
});

test('one relay address, the default, is one pool as before', () => {
  const config = loadConfig(['--listen', '192.0.2.7', '--external-ip', '198.51.100.7']);
  assert.deepEqual(relayAddresses(config), [{ family: 4, bind: '192.0.2.7', advertised: '198.51.100.7' }]);
  assert.deepEqual(ownAddresses(config).relay, [['198.51.100.7', '192.0.2.7']]);
});

test('a wildcard relay address told as one of the host\'s addresses binds to it; told as a NAT\'s, it stays on the wildcard', () => {
  const local = Object.values(networkInterfaces()).flat().find((i) => i?.family === 'IPv4' && !i.internal)?.address ?? '127.0.0.1';
  // The sockets send from the told address, not from whichever one the route to a peer picks.
  assert.deepEqual(relayAddresses(loadConfig(['--listen', '0.0.0.0', '--external-ip', local])), [{ family: 4, bind: local, advertised: local }]);
  // 198.51.100.7 (TEST-NET-2) is on no interface here: a 1:1 NAT in front maps it to whichever address sends.
  assert.deepEqual(relayAddresses(loadConfig(['--listen', '0.0.0.0', '--external-ip', '198.51.100.7'])), [{ family: 4, bind: '0.0.0.0', advertised: '198.51.100.7' }]);
});
