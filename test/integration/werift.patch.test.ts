/**
 * What patches/werift+0.24.4.patch changes in werift's handshakes (docs/client.md "Setup time"),
 * checked on two real werift peers over loopback:
 * - the DTLS server answers a ClientHello without a cookie with its ServerHello at once (no
 *   HelloVerifyRequest round trip, RFC 6347 §4.2.1), and the first message it sends has
 *   message_seq 0 (§4.2.2);
 * - the data channel's opener may send before DATA_CHANNEL_ACK (RFC 8832 §6): it is open as soon
 *   as its DATA_CHANNEL_OPEN is sent;
 * - the SCTP association's RTO.Initial is RFC 9260's 1 s, not RFC 4960's 3 s, and the DTLS
 *   handshake's first retransmission timer comes from ICE's round trip;
 * - data still flows both ways;
 * - an ICE restart does not re-advertise the host candidate of an address the host no longer has
 *   (docs/client.md "Network change");
 * - a candidate signaled at the address of a peer-reflexive one gives it its type, and a direct
 *   pair nominated meanwhile takes over from the selected pair now known to be relayed
 *   (docs/client.md "Relayed first, direct later").
 * If `npm ci` ran without the patch (or werift moved on), these fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Candidate, CandidatePair, CandidatePairState, Connection, RTCPeerConnection, type RTCDataChannel } from 'werift';
import { nextEvent } from '../helpers/wait.ts';

interface HandshakeCacheLike { handshakeCache: Record<number, { data: { msg_type: number; message_seq: number }[]; isLocal: boolean } | undefined>; options?: { p2pdRetransmitMs?: number } }
interface DtlsTransportLike { dtls?: { dtls: HandshakeCacheLike }; role: string }

test('werift as patched: no cookie round trip, ServerHello at message_seq 0, the opener open before the ACK', async () => {
  const offerer = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  const answerer = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  try {
    offerer.onIceCandidate.subscribe((c) => { if (c) void answerer.addIceCandidate(c).catch(() => undefined); });
    answerer.onIceCandidate.subscribe((c) => { if (c) void offerer.addIceCandidate(c).catch(() => undefined); });
    const channel = offerer.createDataChannel('p2pd');
    // When the opener goes open, has the answerer sent its ACK yet? It is sent on receipt of the
    // OPEN, so an opener that waited for it would be open only after the answerer saw the channel.
    let remoteSeen = false;
    let remoteSeenAtOpen: boolean | undefined;
    const remote = nextEvent<RTCDataChannel>('the answerer\'s data channel', (done) => answerer.onDataChannel.subscribe((dc) => { remoteSeen = true; done(dc); }), 20_000);
    const opened = nextEvent<void>('the opener open', (done) => channel.stateChanged.subscribe((s) => {
      if (s === 'open') { remoteSeenAtOpen = remoteSeen; done(); }
    }), 20_000);

    await offerer.setLocalDescription(await offerer.createOffer());
    // RFC 9260 §16: RTO.Initial 1 s (werift had RFC 4960's 3 s: a lost INIT cost 3 s of setup).
    const sctp = (offerer.sctpTransport as unknown as { sctp?: { rto: number } } | undefined)?.sctp;
    assert.equal(sctp?.rto, 1, 'the SCTP association starts with RTO.Initial = 1 s');
    await answerer.setRemoteDescription(offerer.localDescription!);
    await answerer.setLocalDescription(await answerer.createAnswer());
    await offerer.setRemoteDescription(answerer.localDescription!);
    await opened;
    const theirs = await remote;
    assert.equal(remoteSeenAtOpen, false, 'the opener was open only after the OPEN reached the other side: it waited for the ACK');

    // The answerer (active) is the DTLS client, the offerer the server.
    const client = answerer.dtlsTransports[0] as unknown as DtlsTransportLike;
    const server = offerer.dtlsTransports[0] as unknown as DtlsTransportLike;
    assert.equal(client.role, 'client');
    const clientCache = client.dtls!.dtls.handshakeCache;
    assert.ok(clientCache[1], 'the client\'s flight 1 (its ClientHello) is in its transcript');
    assert.equal(clientCache[3], undefined, 'the client sent a flight 3: the server asked for a cookie (HelloVerifyRequest)');
    // The handshake's first retransmission timer comes from ICE's round trip, on both ends, not
    // werift's fixed 0.5 s: clamp(2·RTT + 100 ms, 150, 500) of the selected pair's RTT. On an idle
    // loopback that is the 150 ms floor; on a loaded machine the check's RTT can be tens of ms, so
    // the value is checked against the pair's own measurement, while that is still the only one.
    for (const [end, pc] of [[client, answerer], [server, offerer]] as const) {
      const timer = end.dtls?.dtls.options?.p2pdRetransmitMs;
      assert.equal(typeof timer, 'number', `the DTLS ${end.role} has a retransmission timer from ICE`);
      assert.ok(timer! >= 150 && timer! <= 500, `the DTLS ${end.role}'s first retransmission timer ${timer} ms is within 150-500 ms`);
      const pair = (pc.iceTransports[0] as unknown as { connection: { nominated?: { rtt?: number; roundTripTimeMeasurements: number } } }).connection.nominated;
      if (pair?.rtt !== undefined && pair.roundTripTimeMeasurements === 1) {
        const expected = Math.min(500, Math.max(150, Math.round(2 * pair.rtt * 1e3 + 100)));
        assert.equal(timer, expected, `the DTLS ${end.role}'s first retransmission timer against the pair's RTT ${(pair.rtt * 1e3).toFixed(1)} ms`);
      }
    }
    const serverHello = server.dtls!.dtls.handshakeCache[4]?.data.find((h) => h.msg_type === 2);
    assert.equal(serverHello?.message_seq, 0, 'the ServerHello, the server\'s first message, has message_seq 0');

    const echoed = nextEvent<string>('the echo', (done) => channel.onMessage.subscribe((m) => done(String(m))));
    theirs.onMessage.subscribe((m) => theirs.send(`echo ${String(m)}`));
    channel.send('hello');
    assert.equal(await echoed, 'echo hello');
  } finally {
    await Promise.all([offerer.close(), answerer.close()].map((p) => p.catch(() => undefined)));
  }
});

interface HostProtocolLike { localIp?: string; localCandidate?: { host: string; type: string }; close(): Promise<void> }
interface ConnectionInternals { stunServer?: unknown; protocols: HostProtocolLike[]; checkList: CandidatePair[]; nominated?: CandidatePair; _remoteCandidates: Candidate[] }

test('werift as patched: an ICE restart drops the host candidate of an address that is gone, and closes its socket', async () => {
  const ice = new Connection(true, {});
  const internals = ice as unknown as ConnectionInternals;
  internals.stunServer = undefined; // host candidates only: no STUN server is reachable here
  try {
    await ice.gatherCandidates();
    const protocol = internals.protocols.find((p) => p.localCandidate?.type === 'host');
    assert.ok(protocol?.localCandidate, 'a host candidate was gathered');
    // The network changes: the address of that socket is gone (192.0.2.0/24 is TEST-NET-1,
    // RFC 5737, on no interface here). Its socket is bound to the wildcard and would still send.
    const gone = '192.0.2.77';
    protocol.localIp = gone;
    protocol.localCandidate.host = gone;
    let closed = false;
    const close = protocol.close.bind(protocol);
    protocol.close = async () => { closed = true; await close(); };

    await ice.restart();
    await ice.gatherCandidates();
    const hosts = ice.localCandidates.filter((c) => c.type === 'host').map((c) => c.host);
    assert.ok(!hosts.includes(gone), `the restart re-advertised the gone address: ${hosts.join(', ')}`);
    assert.ok(hosts.length > 0, 'the addresses still here have their host candidates');
    assert.equal(closed, true, 'the socket of the gone address was closed');
    assert.ok(!internals.protocols.includes(protocol), 'the gone address\'s socket left the transport');
  } finally {
    await ice.close().catch(() => undefined);
  }
});

test('werift as patched: a candidate signaled at a peer-reflexive address takes its type, and the direct pair nominated meanwhile takes over', async () => {
  const ice = new Connection(true, {});
  const internals = ice as unknown as ConnectionInternals;
  internals.stunServer = undefined;
  try {
    await ice.gatherCandidates();
    const protocol = internals.protocols.find((p) => p.localCandidate?.type === 'host');
    assert.ok(protocol, 'a host candidate was gathered');
    // On a loaded machine the peer's check through its TURN relay came before its signaling told
    // the relayed candidate: ICE learned the relay's address as peer-reflexive (RFC 8445
    // section 7.3.1.3), and that pair was selected. Then a direct pair succeeded, nominated; it
    // could not take over, since nothing said the selected one was relayed. (198.51.100.0/24 and
    // 203.0.113.0/24 are TEST-NET-2 and -3, RFC 5737.)
    const relayAddress: [string, number] = ['198.51.100.7', 40_000];
    const prflx = new Candidate('prflx1', 1, 'udp', 1_845_501_695, ...relayAddress, 'prflx');
    const host = new Candidate('host1', 1, 'udp', 2_130_706_431, '198.51.100.9', 50_000, 'host');
    const pair = (remote: Candidate): CandidatePair => {
      const p = new CandidatePair(protocol as never, remote, true);
      p.nominated = true;
      p.updateState(CandidatePairState.SUCCEEDED);
      return p;
    };
    const relayed = pair(prflx);
    const direct = pair(host);
    internals._remoteCandidates.push(prflx, host);
    internals.checkList.push(relayed, direct);
    internals.nominated = relayed;

    await ice.addRemoteCandidate(new Candidate('relay1', 1, 'udp', 16_777_215, ...relayAddress, 'relay', '203.0.113.1', 3478));
    assert.equal(prflx.type, 'relay', 'the peer-reflexive candidate took the signaled type');
    assert.equal(ice.remoteCandidates.filter((c) => c.host === relayAddress[0] && c.port === relayAddress[1]).length, 1,
      'the signaled candidate is the peer-reflexive one, not a second candidate at the same address');
    assert.equal(internals.nominated, direct, 'the nominated direct pair took over from the relayed one');
  } finally {
    await ice.close().catch(() => undefined);
  }
});
