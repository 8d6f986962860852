import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { advertisedAddress, advertisedHost } from './advertised.ts';

test('--external-ip stands in front of --listen and --relay-ip once given, for its own family only', () => {
  const natted = { listen: '10.0.0.5', externalIp: '203.0.113.10' };
  assert.equal(advertisedAddress(natted, '10.0.0.5', 4), '203.0.113.10', 'the listener');
  assert.equal(advertisedAddress(natted, '10.0.0.7', 4), '203.0.113.10', 'a relay address behind the same NAT');
  assert.equal(advertisedAddress(natted, 'fd00::5', 6), 'fd00::5', 'an IPv6 relay is told as itself');
  const plain = { listen: '127.0.0.1', externalIp: '127.0.0.1' };
  assert.equal(advertisedAddress(plain, '127.0.0.2', 4), '127.0.0.2', 'by default each address is told as itself');
  assert.equal(advertisedHost(natted), '203.0.113.10');
  assert.equal(advertisedHost(plain), '127.0.0.1');
  assert.equal(advertisedHost({ listen: '::1', externalIp: '::1' }), '::1');
});

test('a wildcard is told as --external-ip when that is concrete, else as an interface address of the family', () => {
  assert.equal(advertisedAddress({ listen: '0.0.0.0', externalIp: '198.51.100.1' }, '0.0.0.0', 4), '198.51.100.1');
  const wild = { listen: '0.0.0.0', externalIp: '0.0.0.0' };
  assert.equal(isIP(advertisedAddress(wild, '0.0.0.0', 4) ?? ''), 4, 'an IPv4 interface address (loopback at least)');
  assert.equal(isIP(advertisedHost(wild)), 4);
  assert.equal(isIP(advertisedHost({ listen: '::', externalIp: '::' })), 4, 'a dual-stack listener is named by IPv4');
  const six = advertisedAddress({ listen: '0.0.0.0', externalIp: '198.51.100.1' }, '::', 6);
  assert.ok(six === undefined || isIP(six) === 6, 'never an address of the other family');
});

test('signaling URLs: --signal-url as given; else the embedded broker over WebSocket and TCP at advertised addresses; none for an external broker', async () => {
  const { advertisedSignalUrls } = await import('./advertised.ts');
  const base = { listen: '127.0.0.1', externalIp: '127.0.0.1', http: { host: '127.0.0.1', port: 8080 }, mqtt: { host: '127.0.0.1', port: 1883 }, mqttUrl: undefined, signalUrls: [] };
  assert.deepEqual(advertisedSignalUrls(base), ['ws://127.0.0.1:8080/mqtt', 'mqtt://127.0.0.1:1883']);
  assert.deepEqual(advertisedSignalUrls({ ...base, listen: '10.0.0.5', externalIp: '203.0.113.10', http: { host: '0.0.0.0', port: 80 }, mqtt: { host: '0.0.0.0', port: 1883 } }),
    ['ws://203.0.113.10:80/mqtt', 'mqtt://203.0.113.10:1883'], 'wildcards are told as --external-ip');
  assert.deepEqual(advertisedSignalUrls({ ...base, http: { host: '::1', port: 8080 }, mqtt: { host: '::1', port: 0 } }), ['ws://[::1]:8080/mqtt'], 'IPv6 in brackets; no TCP URL for an ephemeral port');
  assert.deepEqual(advertisedSignalUrls({ ...base, mqttUrl: 'mqtt://broker:1883' }), []);
  assert.deepEqual(advertisedSignalUrls({ ...base, mqttUrl: 'mqtt://broker:1883', signalUrls: ['wss://sig.example.com/mqtt'] }), ['wss://sig.example.com/mqtt']);
});

test('--external-ip PUBLIC/PRIVATE names what one local address is told as; the plain one stands for the rest', () => {
  const pairs = [{ publicIp: '203.0.113.1', privateIp: '10.0.0.1' }, { publicIp: '203.0.113.2', privateIp: '10.0.0.2' }];
  const nat = { listen: '10.0.0.1', externalIp: '10.0.0.1', externalIpPairs: pairs };
  assert.equal(advertisedAddress(nat, '10.0.0.1', 4), '203.0.113.1');
  assert.equal(advertisedAddress(nat, '10.0.0.2', 4), '203.0.113.2');
  assert.equal(advertisedAddress(nat, '10.0.0.3', 4), '10.0.0.3', 'an address without a pair is told as itself');
  assert.equal(advertisedHost(nat), '203.0.113.1', 'the listener is told as its pair');
  assert.equal(advertisedAddress({ ...nat, listen: '0.0.0.0', externalIp: '0.0.0.0' }, '0.0.0.0', 4), '203.0.113.1', 'a wildcard: the first pair');
  const mixed = { listen: '0.0.0.0', externalIp: '198.51.100.9', externalIpPairs: pairs };
  assert.equal(advertisedAddress(mixed, '10.0.0.2', 4), '203.0.113.2', 'a pair wins over the plain --external-ip');
  assert.equal(advertisedAddress(mixed, '0.0.0.0', 4), '198.51.100.9');
});
