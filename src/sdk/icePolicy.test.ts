import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRelayCandidate, withoutRelayCandidates, withoutTurn } from './icePolicy.ts';

test('withoutTurn keeps STUN URLs and drops TURN servers with their credentials', () => {
  assert.deepEqual(withoutTurn([
    { urls: ['stun:a:3478'] },
    { urls: ['turn:a:3478?transport=udp', 'turns:a:5349'], username: 'u', credential: 'c' },
    { urls: 'stuns:b:5349' },
    { urls: ['turn:c:3478', 'stun:c:3478'], username: 'u', credential: 'c' },
  ]), [{ urls: ['stun:a:3478'] }, { urls: ['stuns:b:5349'] }, { urls: ['stun:c:3478'] }]);
});

test('a relay candidate is told apart from host, srflx and prflx ones', () => {
  assert.equal(isRelayCandidate({ candidate: 'candidate:1 1 udp 16777215 198.51.100.1 50000 typ relay raddr 0.0.0.0 rport 0' }), true);
  assert.equal(isRelayCandidate({ candidate: 'candidate:2 1 UDP 2122260223 192.168.1.2 5000 typ host' }), false);
  assert.equal(isRelayCandidate({ candidate: 'candidate:3 1 udp 1686052607 203.0.113.9 6000 typ srflx raddr 192.168.1.2 rport 5000' }), false);
  assert.equal(isRelayCandidate({ candidate: 'candidate:4 1 udp 1 10.0.0.1 7000 typ prflx' }), false);
});

test('withoutRelayCandidates removes only the relay candidate lines of an SDP', () => {
  const sdp = 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=candidate:1 1 udp 2122260223 192.168.1.2 5000 typ host\r\n'
    + 'a=candidate:2 1 udp 16777215 198.51.100.1 50000 typ relay raddr 0.0.0.0 rport 0\r\na=end-of-candidates\r\n';
  assert.equal(withoutRelayCandidates(sdp), 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=candidate:1 1 udp 2122260223 192.168.1.2 5000 typ host\r\na=end-of-candidates\r\n');
});
