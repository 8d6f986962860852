import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NatSim, type NatSimOptions } from '../../test/helpers/natSim.ts';
import { natDetector, type NatType } from './natDetect.ts';
import { DEFAULT_MAX_PACKETS, udpNatProbe } from './natDetectNode.ts';

/** The session's iceServers as p2pd lists them: the STUN server(s), then TURN (ignored here). */
function iceServers(sim: NatSim, withSecond: boolean): { urls: string[] }[] {
  const out = [{ urls: [`stun:${sim.primary.address}:${sim.primary.port}`] }];
  if (withSecond) out.push({ urls: [`stun:${sim.second.address}:${sim.second.port}`] });
  out.push({ urls: [`turn:${sim.primary.address}:${sim.primary.port}?transport=udp`] });
  return out;
}

async function detect(opts: NatSimOptions, withSecond = false, extra: { maxPackets?: number; timeoutMs?: number; requestTimeoutMs?: number } = {}): Promise<{ type: NatType; sim: NatSim }> {
  const sim = new NatSim(opts);
  const probe = udpNatProbe({
    sockets: () => Promise.resolve(sim.open),
    requestTimeoutMs: extra.requestTimeoutMs ?? 300,
    ...(extra.maxPackets === undefined ? {} : { maxPackets: extra.maxPackets }),
  });
  // The whole-run bound is far off unless a test is about it: verdicts, not speed.
  const type = await natDetector(probe, { timeoutMs: extra.timeoutMs ?? 20_000 }).detect(iceServers(sim, withSecond));
  return { type, sim };
}

const EIM = 'endpoint-independent';
const ADM = 'address-dependent';
const APDM = 'address-and-port-dependent';

for (const [opts, expected] of [
  [{}, 'open internet'],
  [{ mapping: EIM, filtering: EIM }, 'full cone'],
  [{ mapping: EIM, filtering: ADM }, 'restricted cone'],
  [{ mapping: EIM, filtering: APDM }, 'port-restricted cone'],
  [{ mapping: ADM, filtering: APDM }, 'symmetric'],
  [{ mapping: APDM, filtering: EIM }, 'symmetric'],
] as const) {
  test(`against an RFC 5780 server, mapping ${opts.mapping ?? 'none'} and filtering ${opts.filtering ?? 'none'} read as ${expected}`, async () => {
    const { type, sim } = await detect(opts);
    assert.equal(type, expected);
    assert.ok(sim.packets <= DEFAULT_MAX_PACKETS, `${sim.packets} datagrams`);
    assert.equal(sim.openSockets, 0, 'every socket is closed');
  });
}

for (const [opts, expected] of [
  [{ mapping: EIM, filtering: APDM }, 'cone'],
  [{ mapping: ADM, filtering: APDM }, 'symmetric'],
  [{ mapping: APDM, filtering: APDM }, 'symmetric'],
  [{}, 'cone'],
] as const) {
  test(`without OTHER-ADDRESS, the mapping test against two servers reads mapping ${opts.mapping ?? 'none'} as ${expected}`, async () => {
    const { type, sim } = await detect({ ...opts, rfc5780: false }, true);
    assert.equal(type, expected);
    assert.ok(sim.packets <= 4, `${sim.packets} datagrams: one Binding request to each server`);
    assert.equal(sim.openSockets, 0);
  });
}

test('one server without OTHER-ADDRESS tells nothing behind a NAT, and cone without one', async () => {
  assert.equal((await detect({ mapping: APDM, filtering: APDM, rfc5780: false })).type, 'unknown');
  assert.equal((await detect({ rfc5780: false })).type, 'cone');
});

test('an RFC 5780 server whose alternate address is silent falls back to the mapping test', async () => {
  const silent = ['198.51.100.2:3478', '198.51.100.2:3479'];
  assert.equal((await detect({ mapping: APDM, filtering: APDM, silent }, true)).type, 'symmetric');
  assert.equal((await detect({ mapping: EIM, filtering: APDM, silent }, true)).type, 'cone');
});

test('no answer from any server is UDP blocked', async () => {
  const { type, sim } = await detect({ blocked: true, mapping: EIM, filtering: EIM }, true);
  assert.equal(type, 'UDP blocked');
  assert.ok(sim.packets <= 8, `${sim.packets} datagrams: four tries per server`);
  assert.equal(sim.openSockets, 0);
});

test('a silent first server leaves the second to answer Test I', async () => {
  assert.equal((await detect({ silent: ['198.51.100.1:3478'] }, true)).type, 'cone');
});

test('the whole run is bounded in time: unknown at the bound, and its sockets closed', async () => {
  const { type, sim } = await detect({ blocked: true }, true, { timeoutMs: 200, requestTimeoutMs: 60_000 });
  assert.equal(type, 'unknown');
  assert.equal(sim.openSockets, 0);
  const sent = sim.packets;
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(sim.packets, sent, 'nothing is sent after the bound');
});

test('the run is bounded in datagrams: past the budget nothing is sent and the verdict is unknown', async () => {
  const { type, sim } = await detect({ blocked: true }, true, { maxPackets: 5 });
  assert.equal(type, 'unknown');
  assert.equal(sim.packets, 5);
});
