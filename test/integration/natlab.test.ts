/**
 * `p2pd nat-type` from behind real Linux NATs (network namespaces + iptables): the verdict is the
 * expected classic type, and the same against p2pd as against coturn's turnserver.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLab, labSupported, type LabNat } from '../../lab/netns.ts';
import { compareVerdicts } from '../../lab/natType.ts';

const cases: [LabNat, string, string, string][] = [
  ['full-cone', 'full cone', 'endpoint-independent', 'endpoint-independent'],
  ['port-restricted-cone', 'port-restricted cone', 'endpoint-independent', 'address-and-port-dependent'],
  ['symmetric', 'symmetric', 'address-and-port-dependent', 'address-and-port-dependent'],
];

for (const [nat, type, mapping, filtering] of cases) {
  test(`behind a ${nat} NAT: "${type}", against p2pd and against coturn alike`, { skip: labSupported() }, async () => {
    const lab = createLab(nat);
    try {
      const { p2pd, coturn } = await compareVerdicts(lab);
      assert.equal(p2pd.natted, true);
      assert.equal(p2pd.type, type);
      assert.equal(p2pd.mapping, mapping);
      assert.equal(p2pd.filtering, filtering);
      const verdict = (v: typeof p2pd): unknown[] => [v.natted, v.mapping, v.filtering, v.type];
      assert.deepEqual(verdict(coturn), verdict(p2pd));
    } finally {
      lab.destroy();
    }
  });
}
