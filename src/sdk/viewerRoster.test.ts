import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeClock } from '../../test/helpers/fakeClock.ts';
import { ViewerRoster, type RosterEntry } from './viewerRoster.ts';

function rig(opts: { maxViewers?: number; idleMs?: number } = {}) {
  const clock = fakeClock();
  const idle: string[] = [];
  const roster: ViewerRoster<RosterEntry> = new ViewerRoster<RosterEntry>({
    clock, ...opts, onIdle: (v) => { idle.push(v.sessionId); roster.leave(v); },
  });
  const join = (sessionId: string, appId = 'app-1'): RosterEntry =>
    roster.join(sessionId, () => ({ sessionId, appId, lastSignAt: clock.now() }));
  return { clock, roster, idle, join };
}

test('only the session\'s app speaks for it; another client on the same session id is foreign', () => {
  const { roster, join } = rig();
  const v = join('s1', 'app-1');
  assert.equal(roster.of('s1', 'app-1'), v);
  assert.equal(roster.of('s1', 'app-2'), undefined);
  assert.equal(roster.foreign('s1', 'app-2'), true);
  assert.equal(roster.foreign('s1', 'app-1'), false);
  assert.equal(roster.foreign('s2', 'app-2'), false, 'an unknown session is nobody\'s yet');
  assert.equal(join('s1', 'app-2'), v, 'a second join of a session finds the first viewer');
});

test('the viewer beyond maxViewers is refused with DEVICE_BUSY and leaves; the others stay', () => {
  const { roster, join } = rig({ maxViewers: 2 });
  const a = join('a');
  const b = join('b');
  assert.equal(roster.refuse(a, false), undefined);
  assert.equal(roster.refuse(b, false), undefined);
  const c = join('c');
  assert.equal(roster.refuse(c, false), 'DEVICE_BUSY');
  assert.equal(roster.size, 2);
  assert.equal(roster.has(c), false);
  roster.leave(a);
  const d = join('d');
  assert.equal(roster.refuse(d, false), undefined, 'a place freed is a place');
});

test('an ICE restart for a session the device does not know is SESSION_UNKNOWN, however empty the roster', () => {
  const { roster, join } = rig();
  const v = join('s1');
  assert.equal(roster.refuse(v, true), 'SESSION_UNKNOWN');
  assert.equal(roster.size, 0);
});

test('the sweep hands over a viewer silent for idleMs, and keeps one that showed life', async () => {
  const { clock, roster, idle, join } = rig({ idleMs: 10_000 });
  const quiet = join('quiet');
  const alive = join('alive');
  await clock.advance(6_000);
  roster.touch(alive);
  // The sweep runs every 5 s: at 15 s the quiet one has been silent 15 s, the other 9 s.
  await clock.advance(9_000);
  assert.deepEqual(idle, ['quiet']);
  assert.equal(roster.has(quiet), false);
  assert.equal(roster.has(alive), true);
  await clock.advance(10_000);
  assert.deepEqual(idle, ['quiet', 'alive']);
});

test('close stops the sweep: no timer is left behind', async () => {
  const { clock, roster, idle, join } = rig({ idleMs: 1_000 });
  join('s1');
  roster.close();
  assert.equal(clock.pending, 0);
  await clock.advance(60_000);
  assert.deepEqual(idle, []);
});

test('leave is once: a second leave, or one of a viewer that was replaced, says false', () => {
  const { roster, join } = rig();
  const v = join('s1');
  assert.equal(roster.leave(v), true);
  assert.equal(roster.leave(v), false);
  join('s1');
  assert.equal(roster.leave(v), false, 'the old viewer of a reused session id is not the new one');
  assert.equal(roster.size, 1);
});
