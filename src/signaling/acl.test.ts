import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aclRules, filterCovers, mayPublish, maySubscribe, topicMatches } from './acl.ts';

const app = aclRules({ sub: 'app_1', role: 'app', devices: ['device_1', 'device_2'] });
const anyApp = aclRules({ sub: 'app_any', role: 'app', devices: ['*'] });
const device = aclRules({ sub: 'device_1', role: 'device', devices: [] });

test('an app subscribes only to its own topic and to its devices\' presence', () => {
  assert.ok(maySubscribe(app, 'p2p/signal/app/app_1'));
  assert.ok(!maySubscribe(app, 'p2p/signal/app/app_2'));
  assert.ok(!maySubscribe(app, 'p2p/signal/app/+'));
  assert.ok(!maySubscribe(app, 'p2p/signal/#'));
  assert.ok(!maySubscribe(app, '#'));
  assert.ok(!maySubscribe(app, 'p2p/signal/device/device_1'));
  assert.ok(maySubscribe(app, 'p2p/presence/device/device_2'));
  assert.ok(!maySubscribe(app, 'p2p/presence/device/device_3'));
  assert.ok(!maySubscribe(app, 'p2p/presence/device/+'));
  assert.ok(maySubscribe(anyApp, 'p2p/presence/device/+'));
  assert.ok(!maySubscribe(anyApp, 'p2p/presence/device/#'), '# covers more than one level');
});

test('an app publishes only to the devices its token names and to the service, never retained', () => {
  assert.ok(mayPublish(app, 'p2p/signal/device/device_1', false));
  assert.ok(!mayPublish(app, 'p2p/signal/device/device_3', false));
  assert.ok(!mayPublish(app, 'p2p/signal/device/device_1', true));
  assert.ok(!mayPublish(app, 'p2p/signal/app/app_1', false));
  assert.ok(mayPublish(app, 'p2p/signal/server', false));
  assert.ok(!mayPublish(app, 'p2p/presence/device/device_1', true));
  assert.ok(mayPublish(anyApp, 'p2p/signal/device/whatever', false));
  assert.ok(!mayPublish(anyApp, 'p2p/signal/device/a/b', false));
});

test('a device subscribes to its own topic, publishes to apps, the service and its own retained presence', () => {
  assert.ok(maySubscribe(device, 'p2p/signal/device/device_1'));
  assert.ok(!maySubscribe(device, 'p2p/signal/device/device_2'));
  assert.ok(!maySubscribe(device, 'p2p/signal/app/app_1'));
  assert.ok(mayPublish(device, 'p2p/signal/app/app_1', false));
  assert.ok(mayPublish(device, 'p2p/signal/server', false));
  assert.ok(mayPublish(device, 'p2p/presence/device/device_1', true));
  assert.ok(!mayPublish(device, 'p2p/presence/device/device_2', true));
  assert.ok(!mayPublish(device, 'p2p/signal/device/device_2', false));
});

test('topic matching follows MQTT (+ one level, # the rest, $ topics apart)', () => {
  assert.ok(topicMatches('a/+/c', 'a/b/c'));
  assert.ok(!topicMatches('a/+/c', 'a/b/d'));
  assert.ok(topicMatches('a/#', 'a/b/c'));
  assert.ok(topicMatches('a/#', 'a'));
  assert.ok(!topicMatches('#', '$SYS/x'));
  assert.ok(!topicMatches('a/+', 'a/b/c'));
  assert.ok(filterCovers('a/+', 'a/b'));
  assert.ok(filterCovers('a/+', 'a/+'));
  assert.ok(!filterCovers('a/b', 'a/+'));
  assert.ok(!filterCovers('a/+', 'a/#'));
  assert.ok(filterCovers('a/#', 'a/+/c'));
});
