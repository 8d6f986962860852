/**
 * `npm run lab [-- --short]`: the NAT lab. For each emulated NAT type, `p2pd nat-type` from behind
 * the NAT against p2pd and against coturn; prints the verdicts side by side.
 */
import { createLab, labSupported, type LabNat } from './netns.ts';
import { compareVerdicts } from './natType.ts';

const EXPECTED: Record<LabNat, string> = {
  none: 'open internet',
  'full-cone': 'full cone',
  'port-restricted-cone': 'port-restricted cone',
  symmetric: 'symmetric',
};

const why = labSupported();
if (why) {
  process.stdout.write(`lab skipped: ${why}\n`);
  process.exit(0);
}
const short = process.argv.includes('--short');
const nats: LabNat[] = short ? ['port-restricted-cone', 'symmetric'] : ['none', 'full-cone', 'port-restricted-cone', 'symmetric'];
let failures = 0;
process.stdout.write(`${'emulated NAT'.padEnd(22)} ${'p2pd nat-type vs p2pd'.padEnd(28)} ${'vs coturn'.padEnd(24)} agree\n`);
for (const nat of nats) {
  const lab = createLab(nat);
  try {
    const { p2pd, coturn } = await compareVerdicts(lab);
    const ok = p2pd.type === coturn.type && p2pd.type === EXPECTED[nat];
    if (!ok) failures++;
    process.stdout.write(`${nat.padEnd(22)} ${p2pd.type.padEnd(28)} ${coturn.type.padEnd(24)} ${ok ? 'yes' : 'NO'}\n`);
  } finally {
    lab.destroy();
  }
}
process.exitCode = failures === 0 ? 0 : 1;
