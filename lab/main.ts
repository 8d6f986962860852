/**
 * `npm run lab [-- options]`: the connectivity lab (docs/lab.md). Root only: network namespaces,
 * iptables, NFQUEUE. Everything it builds is torn down on exit and on ^C.
 *
 *   npm run lab                 NAT classification, then the full matrix: 6 × 6 NAT cells, delay
 *                               0/50 ms × loss 0/2 %, Node SDK and Chromium, 10 attempts each;
 *                               writes lab/report.{json,md,svg} and checks the targets
 *   npm run lab -- --short      the CI form: classification, every cell once with the Node SDK at
 *                               0 ms, Chromium on a few cells, the port-restricted pair at 50 ms
 *                               (Node) and 50 ms / 2 % (Chromium); fails on a cell that does not
 *                               connect or relays where theory says direct
 *   npm run lab -- delay        measures the delay stage itself (lab/delayCheck.ts)
 *
 *   npm run lab -- report F…    a report from attempts saved by earlier runs (--save F)
 *
 * Options: --attempts N, --stacks node,chromium, --conditions 0/0,50/0,0/2,50/2 (delay ms/loss %
 * between camera and app), --p2pd-at mid|far (p2pd midway between them, the default, or as far from
 * each as they are apart), --cameras K,… and --apps K,… (NAT kinds), --out DIR (default lab/; the
 * short form: artifacts/lab), --save FILE (every attempt as a JSON line, as it ends), --no-classify.
 */
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { compareTelemetry, renderTelemetry } from './telemetry.ts';
import { fileURLToPath } from 'node:url';
import type { Stack } from './connectivity.ts';
import { conditionAt, runMatrix, type Condition, type LabPlan, type P2pdPlace } from './matrix.ts';
import { COTURN_PORT, P2PD_STUN_PORT, settledNatType, startCoturn } from './natType.ts';
import { p2pdDelay, type Attempt, type Targets } from './report.ts';
import { buildReport, writeReport } from './reportWrite.ts';
import { startService } from './service.ts';
import { Internet, NAT_KINDS, labSupported, type NatKind } from './sites.ts';
import { EXPECTED_NAT_TYPE } from './theory.ts';

const argv = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const say = (line: string): void => { process.stdout.write(`${line}\n`); };

const why = labSupported();
if (why) {
  say(`lab skipped: ${why}`);
  process.exit(0);
}

if (argv[0] === 'delay') {
  const { main } = await import('./delayCheck.ts');
  process.exit(await main(argv.slice(1)));
}

const short = argv.includes('--short');
const kinds = (raw: string | undefined): NatKind[] => {
  if (raw === undefined) return [...NAT_KINDS];
  const list = raw.split(',');
  for (const k of list) if (!(NAT_KINDS as readonly string[]).includes(k)) throw new Error(`unknown NAT kind ${k} (one of ${NAT_KINDS.join(', ')})`);
  return list as NatKind[];
};
const place = option('p2pd-at') ?? 'mid';
if (place !== 'mid' && place !== 'far') throw new Error(`--p2pd-at is mid or far, not ${place}`);
const at = (delayMs: number, lossPct: number): Condition => conditionAt(delayMs, lossPct, place as P2pdPlace);
const conditions = (raw: string): Condition[] => raw.split(',').map((c) => {
  const [delayMs, lossPct] = c.split('/').map(Number);
  if (!Number.isFinite(delayMs) || !Number.isFinite(lossPct)) throw new Error(`bad condition ${c} (delay ms/loss %, e.g. 50/2)`);
  return at(delayMs as number, lossPct as number);
});

/** `p2pd nat-type` from behind every NAT kind, against p2pd and coturn: must match theory. */
async function classify(): Promise<number> {
  const net = new Internet(`pk${process.pid}`);
  let failures = 0;
  try {
    const service = await startService(net.server, { roles: 'stun' });
    const coturn = await startCoturn(net.server, net.inet);
    say(`${'NAT kind'.padEnd(20)} ${'expected'.padEnd(22)} ${'p2pd nat-type vs p2pd'.padEnd(24)} ${'vs coturn'.padEnd(22)} right`);
    for (const kind of NAT_KINDS) {
      const site = net.addSite('app', kind);
      const ours = settledNatType(site.host, P2PD_STUN_PORT, EXPECTED_NAT_TYPE[kind]).type;
      const theirs = settledNatType(site.host, COTURN_PORT, EXPECTED_NAT_TYPE[kind]).type;
      const right = ours === EXPECTED_NAT_TYPE[kind] && theirs === ours;
      if (!right) failures++;
      say(`${kind.padEnd(20)} ${EXPECTED_NAT_TYPE[kind].padEnd(22)} ${ours.padEnd(24)} ${theirs.padEnd(22)} ${right ? 'yes' : 'NO'}`);
    }
    coturn.stop();
    service.stop();
  } finally {
    net.destroy();
  }
  return failures;
}

function plan(): { plans: LabPlan[]; targets: Partial<Targets>; out: string } {
  const attempts = Number(option('attempts') ?? (short ? 1 : 10));
  const stacks = (option('stacks')?.split(',') ?? ['node', 'chromium']) as Stack[];
  const cameras = kinds(option('cameras'));
  const apps = kinds(option('apps'));
  const cells = cameras.flatMap((c) => apps.map((a) => [c, a] as const));
  const root = fileURLToPath(new URL('..', import.meta.url));
  if (short && option('conditions') === undefined) {
    // Every cell once on the Node SDK; Chromium where the browser's own ICE meets each NAT
    // behaviour; the hardest direct cell under delay and loss, on both stacks.
    const browserCells = [['port-restricted', 'port-restricted'], ['symmetric', 'full-cone'], ['address-restricted', 'symmetric'], ['full-cone', 'udp-blocked']] as const;
    return {
      plans: [
        { cells, conditions: [at(0, 0)], stacks: ['node'], attempts },
        ...(stacks.includes('chromium') ? [{ cells: browserCells, conditions: [at(0, 0)], stacks: ['chromium'] as Stack[], attempts }] : []),
        // Under loss a lost direct check let the relayed pair win until werift took the direct
        // one when it came (docs/client.md "Relayed first, direct later"): both stacks at 50 ms / 2 %.
        { cells: [['port-restricted', 'port-restricted']], conditions: [at(50, 0), at(50, 2)], stacks: ['node'], attempts },
        ...(stacks.includes('chromium') ? [{ cells: [['port-restricted', 'port-restricted']] as const, conditions: [at(50, 2)], stacks: ['chromium'] as Stack[], attempts }] : []),
      ],
      // One attempt per cell says nothing about percentiles: the short form checks paths only.
      targets: { latencyTargets: false, weightedSuccess: false, natType: false },
      out: option('out') ?? `${root}artifacts/lab`,
    };
  }
  return {
    plans: [{ cells, conditions: conditions(option('conditions') ?? '0/0,50/0,0/2,50/2'), stacks, attempts }],
    targets: {},
    out: option('out') ?? `${root}lab`,
  };
}

const { plans, targets, out } = plan();

/**
 * The short form runs one attempt per cell, so one unlucky attempt on a loaded CI machine (a
 * browser that nominated its relay pair before the direct one came up) would decide the run. A
 * cell that failed or relayed where theory says direct runs once more, and that attempt counts
 * (a bounded retry; both are printed). A cell that fails twice fails the lab.
 */
async function retryShortOfTarget(): Promise<void> {
  const cells = buildReport(attempts, { targets }).summary.cells
    .filter((c) => c.success < c.attempts || (c.directPossible && c.direct < c.success));
  for (const c of cells) {
    say(`retrying once: ${c.stack} ${c.delayMs} ms/${c.lossPct} %, camera ${c.camera} × app ${c.app} (${c.success}/${c.attempts} connected, ${c.direct} direct)`);
    const condition = { delayMs: c.delayMs, lossPct: c.lossPct, p2pdMs: p2pdDelay(c) };
    const run = await runMatrix({ cells: [[c.camera, c.app]], conditions: [condition], stacks: [c.stack], attempts: c.attempts }, say);
    const same = (a: Attempt): boolean => a.camera === c.camera && a.app === c.app && a.stack === c.stack && a.delayMs === c.delayMs && a.lossPct === c.lossPct && p2pdDelay(a) === condition.p2pdMs;
    for (let i = attempts.length - 1; i >= 0; i--) if (same(attempts[i] as Attempt)) attempts.splice(i, 1);
    attempts.push(...run.attempts);
  }
}
let failures = 0;
const attempts: Attempt[] = [];
const telemetry: string[] = [];
if (argv[0] === 'report') {
  for (const f of argv.slice(1).filter((a) => !a.startsWith('--') && a !== option('out'))) {
    for (const line of readFileSync(f, 'utf8').split('\n')) if (line.trim() !== '') attempts.push(JSON.parse(line) as Attempt);
  }
} else {
  if (!argv.includes('--no-classify')) failures += await classify();
  const save = option('save');
  const onAttempt = save === undefined ? undefined : (a: Attempt): void => appendFileSync(save, `${JSON.stringify(a)}\n`);
  for (const p of plans) {
    const run = await runMatrix(p, say, onAttempt);
    attempts.push(...run.attempts);
    // What p2pd's metrics say about this run's sessions, fed only by the SDKs' keepalives.
    const rows = compareTelemetry(run.metrics, run.attempts);
    telemetry.push(renderTelemetry(rows));
    for (const r of rows) if (!r.agree) { failures++; say(`FAILED telemetry: ${r.what}: the lab saw ${r.lab}, p2pd counted ${r.service}`); }
  }
}
if (short && argv[0] !== 'report') await retryShortOfTarget();
const report = buildReport(attempts, { targets });
mkdirSync(out, { recursive: true });
const files = writeReport(out, report);
if (telemetry.length > 0) appendFileSync(files.md, `\n## Telemetry: p2pd's metrics beside the lab's attempts\n\nOne table per p2pd run (docs/lab.md "Telemetry").\n\n${telemetry.join('\n\n')}\n`);
say(`\nreport: ${files.md}, ${files.svg}, ${files.json}`);
for (const w of report.targets.warnings) say(`warning: ${w.where}: ${w.reason}`);
for (const f of report.targets.failures) say(`FAILED ${f.target}: ${f.where}: ${f.reason}`);
failures += report.targets.failures.length;
say(failures === 0 ? 'lab: every target checked holds' : `lab: ${failures} failure(s)`);
process.exit(failures === 0 ? 0 : 1);
