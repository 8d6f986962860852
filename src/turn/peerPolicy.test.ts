import { test } from 'node:test';
import assert from 'node:assert/strict';
import { POOL_SLOTS } from './reservations.ts';
import { PeerPolicy } from './peerPolicy.ts';
import { ipv4ToNumber } from './fiveTuple.ts';

const cidr = (text: string): { family: 4 | 6; address: string; prefix: number } => {
  const [address, prefix] = text.split('/') as [string, string];
  return { family: address.includes(':') ? 6 : 4, address, prefix: Number(prefix) };
};
/**
 * A private-address host: STUN on 10.0.0.5:3478, an IPv4 relay address 10.0.0.5 told as the
 * external 100.128.0.9 (pool 0 of the book), an IPv6 one fd00::5 (pool 1).
 */
const self = { own: ['10.0.0.5', '127.0.0.1', '100.128.0.9', 'fd00::5'], relay: [['10.0.0.5', '100.128.0.9'], ['fd00::5']], servicePorts: [3478, 3479] };
const V6_POOL = POOL_SLOTS;
const reach = (p: PeerPolicy, address: string, port: number): boolean => {
  const v4 = ipv4ToNumber(address);
  return p.mayReach(v4 >= 0 ? 4 : 6, v4, address, port);
};

test('a relay address of this server is a permitted peer IP, but only its live relay ports are reachable', () => {
  const p = new PeerPolicy([], [], self);
  assert.equal(p.permits(4, '10.0.0.5'), 'allowed');
  assert.equal(p.permits(4, '100.128.0.9'), 'allowed');
  assert.equal(p.permits(6, 'fd00::5'), 'allowed');
  p.livePorts[50000] = 1;
  p.livePorts[V6_POOL + 50000] = 1;
  assert.equal(reach(p, '10.0.0.5', 50000), true);
  assert.equal(reach(p, '100.128.0.9', 50000), true, 'a public own address is judged the same way');
  assert.equal(reach(p, 'fd00::5', 50000), true);
  for (const port of [3478, 3479, 50001, 53, 8080]) {
    assert.equal(reach(p, '10.0.0.5', port), false, `10.0.0.5:${port}`);
    assert.equal(reach(p, '100.128.0.9', port), false, `100.128.0.9:${port}`);
  }
  p.livePorts[50000] = 0;
  assert.equal(reach(p, '10.0.0.5', 50000), false, 'a port that died is not reachable any more');
});

test('with several relay addresses, a port is a peer only on the address whose allocation holds it', () => {
  const two = { own: ['192.0.2.1', '192.0.2.2'], relay: [['192.0.2.1'], ['192.0.2.2']], servicePorts: [3478] };
  const p = new PeerPolicy([], [], two);
  assert.equal(p.permits(4, '192.0.2.2'), 'allowed', 'every relay address is a permitted peer IP');
  p.livePorts[POOL_SLOTS + 50000] = 1; // pool 1: 192.0.2.2
  assert.equal(reach(p, '192.0.2.2', 50000), true);
  assert.equal(reach(p, '192.0.2.1', 50000), false, 'the same port number on the other relay address holds no allocation');
  assert.equal(reach(p, '192.0.2.2', 3478), false);
});

test('an own address that no relay socket listens on is refused outright, in every IPv6 spelling of it too', () => {
  const p = new PeerPolicy([], [], self);
  assert.equal(p.permits(4, '127.0.0.1'), 'own_address');
  for (const a of ['::ffff:10.0.0.5', '64:ff9b::a00:5', '2002:a00:5::1', '::ffff:100.128.0.9', '64:ff9b::6480:9']) {
    assert.equal(p.permits(6, a), 'own_address', a);
  }
});

test('peers that are not own addresses are judged by their range alone, whatever the port', () => {
  const p = new PeerPolicy([], [], self);
  assert.equal(p.permits(4, '8.8.8.8'), 'allowed');
  assert.equal(reach(p, '8.8.8.8', 3478), true);
  assert.equal(p.permits(4, '10.0.0.6'), 'denied');
  assert.equal(p.permits(4, '169.254.169.254'), 'denied');
  assert.equal(p.isOwn(4, '8.8.8.8'), false);
  assert.equal(p.isOwn(6, 'fd00:0:0::5'), true, 'IPv6 is compared in canonical form');
});

test('--deny-peer wins over the relay exception and over --allow-peer', () => {
  const p = new PeerPolicy([cidr('8.8.0.0/16')], [cidr('10.0.0.0/24'), cidr('8.8.8.0/24')], self);
  assert.equal(p.permits(4, '10.0.0.5'), 'deny_peer');
  assert.equal(p.permits(4, '8.8.8.8'), 'deny_peer');
  assert.equal(p.permits(4, '8.8.4.4'), 'allowed');
});

test('--allow-peer over an own address opens its ports, never the STUN/TURN ports', () => {
  const p = new PeerPolicy([cidr('127.0.0.0/8')], [], self);
  assert.equal(p.permits(4, '127.0.0.1'), 'allowed');
  assert.equal(reach(p, '127.0.0.1', 40000), true);
  assert.equal(reach(p, '127.0.0.1', 3478), false);
  assert.equal(reach(p, '127.0.0.1', 3479), false);
  assert.equal(p.permits(6, '::ffff:127.0.0.1'), 'allowed', 'the range opens the embedded spellings too');
  assert.equal(p.permits(6, '::ffff:10.0.0.5'), 'own_address');
});

test('the relay port range of another TURN node of the cluster is reachable; its other ports are not', () => {
  const p = new PeerPolicy([], [], self);
  assert.equal(p.permits(4, '10.0.0.7'), 'denied');
  p.setRemoteRelays([{ addresses: ['10.0.0.7', '10.0.0.5'], minPort: 40000, maxPort: 40999, port: 3478 }]);
  assert.equal(p.permits(4, '10.0.0.7'), 'allowed');
  assert.equal(reach(p, '10.0.0.7', 40000), true);
  assert.equal(reach(p, '10.0.0.7', 40999), true);
  assert.equal(reach(p, '10.0.0.7', 41000), false);
  assert.equal(reach(p, '10.0.0.7', 3478), false);
  assert.equal(reach(p, '10.0.0.5', 40500), true, 'two nodes on one host: the other one\'s range');
  p.setRemoteRelays([]);
  assert.equal(p.permits(4, '10.0.0.7'), 'denied', 'a node that left is a plain address again');
});

test('a change of the cluster\'s relays is announced, so channels bound before are judged again', () => {
  const p = new PeerPolicy([], [], self);
  let changes = 0;
  p.onChange = () => { changes++; };
  assert.equal(p.isOwn(4, '8.8.8.8'), false);
  p.setRemoteRelays([{ addresses: ['8.8.8.8'], minPort: 40000, maxPort: 40999, port: 3478 }]);
  assert.equal(changes, 1);
  assert.equal(p.isOwn(4, '8.8.8.8'), true, 'a public address of a TURN node is judged per port now');
  assert.equal(reach(p, '8.8.8.8', 3478), false);
  assert.equal(reach(p, '8.8.8.8', 40000), true);
});
