import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OUTSIDE_BUSY_MS, Reservations, RESERVATION_TIMEOUT_MS, slotPool, slotPort } from './reservations.ts';

const req = (quotaKey: string | undefined, extra: Partial<Parameters<Reservations['reserve']>[0]> = {}) => ({ quotaKey, families: [4] as const, evenPort: 'none' as const, token: undefined, ...extra });

test('hands out each port once and takes it back on release', () => {
  const r = new Reservations({ minPort: 50000, maxPort: 50003, maxAllocations: 0, userQuota: 0 });
  const got = [1, 2, 3, 4].map(() => r.reserve(req('u'), 1, 0));
  const ports = got.map((g) => (g.ok ? g.slots[0] : -1)).sort();
  assert.deepEqual(ports, [50000, 50001, 50002, 50003]);
  const none = r.reserve(req('u'), 1, 0);
  assert.deepEqual(none.ok ? undefined : none.code, 508);
  if (got[2]?.ok) r.release(got[2].grant);
  assert.ok(r.reserve(req('u'), 1, 0).ok);
});

test('--user-quota gives 486 per quota key; --max-allocations 508', () => {
  const r = new Reservations({ minPort: 50000, maxPort: 50100, maxAllocations: 3, userQuota: 2 });
  assert.ok(r.reserve(req('a'), 1, 0).ok && r.reserve(req('a'), 1, 0).ok);
  const third = r.reserve(req('a'), 1, 0);
  assert.equal(third.ok ? 0 : third.code, 486);
  assert.ok(r.reserve(req('b'), 1, 0).ok);
  const full = r.reserve(req('c'), 1, 0);
  assert.equal(full.ok ? 0 : full.code, 508);
});

test('EVEN-PORT R=1 holds the next port for its token until redeemed or timed out', () => {
  const r = new Reservations({ minPort: 50001, maxPort: 50004, maxAllocations: 0, userQuota: 0 });
  const a = r.reserve(req('u', { evenPort: 'even+reserve' }), 1, 0);
  assert.ok(a.ok && a.token);
  assert.equal(a.slots[0], 50002);
  const b = r.reserve(req('u', { token: a.token }), 2, 0);
  assert.ok(b.ok);
  assert.equal(b.slots[0], 50003);
  const again = r.reserve(req('u', { token: a.token }), 2, 0);
  assert.equal(again.ok ? 0 : again.code, 508, 'a token is used once');

  const c = r.reserve(req('u', { evenPort: 'even+reserve' }), 1, 0);
  assert.equal(c.ok ? 0 : c.code, 508, 'no even port with a free successor is left');
  r.release(a.ok ? a.grant : 0);
  r.release(b.ok ? b.grant : 0);
  const d = r.reserve(req('u', { evenPort: 'even+reserve' }), 1, 0);
  assert.ok(d.ok && d.token);
  r.expireTokens(RESERVATION_TIMEOUT_MS + 1);
  const e = r.reserve(req('u', { token: d.token }), 1, RESERVATION_TIMEOUT_MS + 1);
  assert.equal(e.ok ? 0 : e.code, 508, 'an expired token');
});

test("a dead worker's allocations and reservations are freed", () => {
  const r = new Reservations({ minPort: 50000, maxPort: 50001, maxAllocations: 0, userQuota: 1 });
  assert.ok(r.reserve(req('u'), 7, 0).ok);
  r.releaseOwner(7);
  assert.equal(r.allocations, 0);
  assert.ok(r.reserve(req('u'), 8, 0).ok);
});

test('--principal-quota counts all of a principal\'s sessions; session and principal keys never mix', () => {
  const r = new Reservations({ minPort: 50000, maxPort: 50100, maxAllocations: 0, userQuota: 2, principalQuota: 3 });
  const grants = ['s:a', 's:b', 's:c'].map((s) => r.reserve(req(s, { principalKey: 'p:app-1' }), 1, 0));
  assert.ok(grants.every((g) => g.ok));
  const fourth = r.reserve(req('s:d', { principalKey: 'p:app-1' }), 1, 0);
  assert.deepEqual(fourth.ok ? 0 : [fourth.code, fourth.reason], [486, 'principal quota reached']);
  // A session named like the principal has its own key: it spends nothing of p:app-1's.
  assert.ok(r.reserve(req('s:app-1', { principalKey: 'p:app-2' }), 1, 0).ok);
  assert.equal(r.used('p:app-1'), 3);
  assert.ok(r.reserve(req(undefined, { principalKey: 'p:app-2' }), 1, 0).ok, 'session-less credentials count for the principal only');
  assert.equal(r.used('p:app-2'), 2);
  if (grants[0]?.ok) r.release(grants[0].grant);
  assert.equal(r.used('p:app-1'), 2);
  assert.ok(r.reserve(req('s:d', { principalKey: 'p:app-1' }), 1, 0).ok, 'freed quota comes back');
});

test('a port found bound outside p2pd is set aside until OUTSIDE_BUSY_MS has passed, then offered again', () => {
  const r = new Reservations({ minPort: 50000, maxPort: 50001, maxAllocations: 0, userQuota: 0 });
  const first = r.reserve(req('u'), 1, 0);
  assert.ok(first.ok);
  const held = first.slots[0]!;
  // The worker could not bind it: it gives the grant back and asks again, naming the port.
  r.release(first.grant);
  const second = r.reserve(req('u', { busy: [held] }), 1, 0);
  assert.ok(second.ok);
  assert.notEqual(second.slots[0], held, 'the port held outside is not granted again at once');
  assert.equal(r.setAsideCount, 1);
  const none = r.reserve(req('u'), 1, OUTSIDE_BUSY_MS - 1);
  assert.equal(none.ok ? 0 : none.code, 508, 'the range is full while the port is set aside');
  const back = r.reserve(req('u'), 1, OUTSIDE_BUSY_MS);
  assert.deepEqual(back.ok ? back.slots : [], [held], 'after OUTSIDE_BUSY_MS it is offered again');
  assert.equal(r.setAsideCount, 0);
});

test('a busy list naming ports outside the range, or ports p2pd holds, changes nothing', () => {
  const r = new Reservations({ minPort: 50000, maxPort: 50001, maxAllocations: 0, userQuota: 0 });
  const a = r.reserve(req('u'), 1, 0);
  assert.ok(a.ok);
  const b = r.reserve(req('u', { busy: [1, 70000, -3, 0.5, a.slots[0]!] }), 1, 0);
  assert.ok(b.ok, 'the one free port is still granted');
  assert.equal(r.setAsideCount, 0);
  r.release(a.grant);
  assert.deepEqual(((g) => (g.ok ? g.slots : []))(r.reserve(req('u'), 1, 0)), a.slots, 'a port p2pd held comes back on release');
});

test('several relay addresses: each is a pool with the whole range, the one with most ports free is taken, 508 only when all are full', () => {
  const r = new Reservations({ minPort: 50000, maxPort: 50001, maxAllocations: 0, userQuota: 0, pools: [4, 4, 6] });
  const pools = [1, 2, 3, 4].map(() => r.reserve(req('u'), 1, 0)).map((g) => (g.ok ? slotPool(g.slots[0]!) : -1));
  assert.deepEqual(pools, [0, 1, 0, 1], 'IPv4 allocations spread over the IPv4 pools');
  const full = r.reserve(req('u'), 1, 0);
  assert.deepEqual(full.ok ? 0 : [full.code, full.limit], [508, 'relay_ports'], 'both IPv4 pools full: 508, though the IPv6 one is free');
  const six = r.reserve(req('u', { families: [6] }), 1, 0);
  assert.deepEqual(six.ok ? [slotPool(six.slots[0]!), slotPort(six.slots[0]!) >= 50000] : [], [2, true]);
  const both = r.reserve(req('u', { families: [4, 6] }), 1, 0);
  assert.equal(both.ok ? 0 : both.code, 508, 'no IPv4 port: a dual allocation takes nothing');
  const six2 = r.reserve(req('u', { families: [6] }), 1, 0);
  assert.ok(six2.ok, 'the IPv6 port the failed dual allocation took back is free again');
});

test('a full relay address is passed over: a freed port brings the allocation back to its own address', () => {
  const r = new Reservations({ minPort: 50000, maxPort: 50003, maxAllocations: 0, userQuota: 0, pools: [4, 4] });
  const grants = Array.from({ length: 7 }, () => r.reserve(req('u'), 1, 0));
  assert.ok(grants.every((g) => g.ok));
  const onFirst = grants.filter((g) => g.ok && slotPool(g.slots[0]!) === 0).length;
  assert.equal(onFirst, 4, 'the first address is full');
  const eighth = r.reserve(req('u'), 1, 0);
  assert.equal(eighth.ok ? slotPool(eighth.slots[0]!) : -1, 1, 'the next allocation goes to the second');
  const ninth = r.reserve(req('u'), 1, 0);
  assert.equal(ninth.ok ? 0 : ninth.code, 508);
  const onFirstGrant = grants.find((g) => g.ok && slotPool(g.slots[0]!) === 0);
  if (onFirstGrant?.ok) r.release(onFirstGrant.grant);
  const tenth = r.reserve(req('u'), 1, 0);
  assert.deepEqual(tenth.ok ? slotPool(tenth.slots[0]!) : -1, 0);
});

test('a RESERVATION-TOKEN redeems its port on the address that reserved it', () => {
  const r = new Reservations({ minPort: 50000, maxPort: 50003, maxAllocations: 0, userQuota: 0, pools: [4, 4] });
  r.reserve(req('u'), 1, 0); // pool 0 now has fewer free ports: the reservation goes to pool 1
  const a = r.reserve(req('u', { evenPort: 'even+reserve' }), 1, 0);
  assert.ok(a.ok && a.token !== undefined);
  assert.equal(slotPool(a.slots[0]!), 1);
  const b = r.reserve(req('u', { token: a.token }), 1, 0);
  assert.deepEqual(b.ok ? b.slots : [], [a.slots[0]! + 1]);
});
