import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ownTopic, parseTopic, sharedFilter } from './topics.ts';

test('reads the topics of docs/signaling.md and nothing else', () => {
  assert.deepEqual(parseTopic('p2p/signal/app/app_1'), { kind: 'peer', role: 'app', id: 'app_1' });
  assert.deepEqual(parseTopic('p2p/signal/device/SN-42'), { kind: 'peer', role: 'device', id: 'SN-42' });
  assert.deepEqual(parseTopic('p2p/signal/server'), { kind: 'server' });
  assert.deepEqual(parseTopic('p2p/presence/device/SN-42'), { kind: 'presence', id: 'SN-42' });
  for (const t of ['p2p/signal/app/', 'p2p/signal/app/a/b', 'p2p/signal/user/x', 'p2p/signal/app/+', 'p2p/presence/device/#', 'other', '$SYS/x']) {
    assert.equal(parseTopic(t), undefined, t);
  }
  assert.equal(ownTopic('device', 'SN-42'), 'p2p/signal/device/SN-42');
  assert.equal(sharedFilter('p2p/signal/app/+'), '$share/p2pd/p2p/signal/app/+');
});
