/**
 * `p2pd nat-type` from behind each NAT kind of the connectivity lab (lab/sites.ts: real Linux
 * NATs in network namespaces, a routed internet): the verdict is the one theory expects, and the
 * same against p2pd as against coturn's turnserver.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { COTURN_PORT, P2PD_STUN_PORT, settledNatType, startCoturn, type Verdict } from '../../lab/natType.ts';
import { startService, type Service } from '../../lab/service.ts';
import { Internet, NAT_KINDS, labSupported } from '../../lab/sites.ts';
import { EXPECTED_NAT_TYPE } from '../../lab/theory.ts';

describe('nat-type behind the lab\'s NATs', { skip: labSupported() }, () => {
  let net: Internet;
  let service: Service;
  let coturn: { stop(): void };

  before(async () => {
    net = new Internet(`nt${process.pid}`);
    service = await startService(net.server, { roles: 'stun' });
    coturn = await startCoturn(net.server, net.inet);
  });
  after(() => {
    coturn?.stop();
    service?.stop();
    net?.destroy();
  });

  for (const kind of NAT_KINDS) {
    test(`behind ${kind}: "${EXPECTED_NAT_TYPE[kind]}", against p2pd and against coturn alike`, () => {
      const site = net.addSite('app', kind);
      // A late answer under load is taken again (lab/natType.ts settledNatType).
      const ours = settledNatType(site.host, P2PD_STUN_PORT, EXPECTED_NAT_TYPE[kind]);
      const theirs = settledNatType(site.host, COTURN_PORT, EXPECTED_NAT_TYPE[kind]);
      assert.equal(ours.type, EXPECTED_NAT_TYPE[kind]);
      if (kind !== 'udp-blocked') assert.equal(ours.natted, kind !== 'none');
      const verdict = (v: Verdict): unknown[] => [v.reachable, v.natted, v.mapping, v.filtering, v.type];
      assert.deepEqual(verdict(theirs), verdict(ours));
    });
  }
});
