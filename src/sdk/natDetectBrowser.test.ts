import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gatheringVerdict, srflxOf } from './natDetectBrowser.ts';

const A = 'stun:192.0.2.1:3478';
const B = 'stun:192.0.2.2:3479';

test('a srflx candidate line gives its address and port; other types give nothing', () => {
  assert.deepEqual(srflxOf('candidate:842163049 1 udp 1677729535 203.0.113.5 61234 typ srflx raddr 0.0.0.0 rport 0 generation 0'), { address: '203.0.113.5', port: 61234 });
  assert.equal(srflxOf('candidate:1 1 udp 2122260223 192.168.1.2 50000 typ host generation 0'), undefined);
  assert.equal(srflxOf('candidate:2 1 tcp 1518280447 203.0.113.5 9 typ srflx tcptype active'), undefined);
});

test('two servers that mapped one socket to different ports: symmetric', () => {
  assert.equal(gatheringVerdict({
    urls: [A, B], failedUrls: [], complete: true,
    srflx: [{ url: A, address: '203.0.113.5', port: 40000 }, { url: B, address: '203.0.113.5', port: 40001 }],
  }), 'symmetric');
});

test('one srflx while both servers answered (the equal one is dropped as redundant): cone', () => {
  assert.equal(gatheringVerdict({ urls: [A, B], failedUrls: [], complete: true, srflx: [{ url: A, address: '203.0.113.5', port: 40000 }] }), 'cone');
  assert.equal(gatheringVerdict({
    urls: [A, B], failedUrls: [], complete: false,
    srflx: [{ url: A, address: '203.0.113.5', port: 40000 }, { url: B, address: '203.0.113.5', port: 40000 }],
  }), 'cone');
});

test('a second server that failed, or none to compare with, leaves the mapping unknown', () => {
  assert.equal(gatheringVerdict({ urls: [A, B], failedUrls: [B], complete: true, srflx: [{ url: A, address: '203.0.113.5', port: 40000 }] }), 'unknown');
  assert.equal(gatheringVerdict({ urls: [A], failedUrls: [], complete: true, srflx: [{ url: A, address: '203.0.113.5', port: 40000 }] }), 'unknown');
  assert.equal(gatheringVerdict({ urls: [A, B], failedUrls: [], complete: false, srflx: [{ url: A, address: '203.0.113.5', port: 40000 }] }), 'unknown');
});

test('no srflx: UDP blocked when nothing answered, cone when every server answered with the host address', () => {
  assert.equal(gatheringVerdict({ urls: [A, B], failedUrls: [A, B], complete: true, srflx: [] }), 'UDP blocked');
  assert.equal(gatheringVerdict({ urls: [A, B], failedUrls: [], complete: false, srflx: [] }), 'UDP blocked');
  assert.equal(gatheringVerdict({ urls: [A, B], failedUrls: [], complete: true, srflx: [] }), 'cone');
  assert.equal(gatheringVerdict({ urls: [A, B], failedUrls: [B], complete: true, srflx: [] }), 'unknown');
  assert.equal(gatheringVerdict({ urls: [], failedUrls: [], complete: true, srflx: [] }), 'unknown');
});
