/**
 * The connectivity lab's report: the theory table, the figures per cell and per condition, the
 * target check, and the files written from them (lab/theory.ts, lab/report.ts, lab/reportWrite.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXPECTED_NAT_TYPE, NAT_KINDS, SEED_MIX, directPossible, theoreticalDirectShare, type NatKind } from '../../lab/theory.ts';
import { checkTargets, percentile, summarize, weightedPercentile, type Attempt, type Summary } from '../../lab/report.ts';
import { buildReport, machineMeta, renderMarkdown, renderSvg, writeReport } from '../../lab/reportWrite.ts';

const base = { stack: 'node', delayMs: 50, lossPct: 0 } as const;

/** `n` successful attempts on the path theory gives, setup times `setupMs(i)`, NAT types right. */
function attempts(camera: NatKind, app: NatKind, n: number, over: Partial<Attempt> = {}, setupMs = (i: number): number => 100 + i): Attempt[] {
  return Array.from({ length: n }, (_, i) => ({
    ...base, camera, app, ok: true,
    path: directPossible(camera, app) ? 'direct' : 'relay',
    setupMs: setupMs(i), firstFrameMs: setupMs(i) + 200, rttMs: 2 * base.delayMs,
    natType: { camera: EXPECTED_NAT_TYPE[camera], app: EXPECTED_NAT_TYPE[app] },
    ...over,
  }));
}

const fullMatrix = (n: number, over: Partial<Attempt> = {}): Attempt[] => NAT_KINDS.flatMap((c) => NAT_KINDS.flatMap((a) => attempts(c, a, n, over)));

test('theory: a direct path for all 36 pairs except UDP blocked and symmetric against symmetric or port-restricted', () => {
  // rows camera, columns app, in NAT_KINDS order: none, full-cone, address-restricted, port-restricted, symmetric, udp-blocked
  const table = [
    [1, 1, 1, 1, 1, 0],
    [1, 1, 1, 1, 1, 0],
    [1, 1, 1, 1, 1, 0],
    [1, 1, 1, 1, 0, 0],
    [1, 1, 1, 0, 0, 0],
    [0, 0, 0, 0, 0, 0],
  ];
  NAT_KINDS.forEach((camera, i) => NAT_KINDS.forEach((app, j) => {
    assert.equal(directPossible(camera, app), table[i]?.[j] === 1, `${camera} × ${app}`);
  }));
});

test('theory: the seed mix sums to 1 and allows a direct path for 76.25 % of pairs', () => {
  assert.ok(Math.abs(Object.values(SEED_MIX).reduce((s, v) => s + v, 0) - 1) < 1e-12);
  assert.ok(Math.abs(theoreticalDirectShare(SEED_MIX) - 0.7625) < 1e-12);
  const allSymmetric = { ...SEED_MIX, 'full-cone': 0, 'address-restricted': 0, 'port-restricted': 0, symmetric: 1 };
  assert.equal(theoreticalDirectShare(allSymmetric), 0);
});

test('percentiles are nearest-rank, undefined without samples', () => {
  const oneToTwenty = Array.from({ length: 20 }, (_, i) => i + 1);
  assert.equal(percentile(oneToTwenty, 95), 19);
  assert.equal(percentile(oneToTwenty, 50), 10);
  assert.equal(percentile(oneToTwenty, 100), 20);
  assert.equal(percentile([7, 3, 5], 95), 7);
  assert.equal(percentile([7, 3, 5], 50), 5);
  assert.equal(percentile([42], 95), 42);
  assert.equal(percentile([], 95), undefined);
  // Weighted: the smallest value whose cumulative weight reaches p % of the total.
  assert.equal(weightedPercentile([{ value: 10, weight: 0.9 }, { value: 1000, weight: 0.1 }], 90), 10);
  assert.equal(weightedPercentile([{ value: 10, weight: 0.9 }, { value: 1000, weight: 0.1 }], 95), 1000);
  assert.equal(weightedPercentile([{ value: 10, weight: 0 }], 50), undefined);
});

test('a cell counts successes, paths, errors and NAT type reports', () => {
  const list = [
    ...attempts('full-cone', 'symmetric', 6),
    ...attempts('full-cone', 'symmetric', 2, { path: 'relay' }),
    { ...base, camera: 'full-cone', app: 'symmetric', ok: false, error: 'ICE_FAILED', natType: { camera: 'restricted cone' } },
    { ...base, camera: 'full-cone', app: 'symmetric', ok: false },
  ] satisfies Attempt[];
  const { cells } = summarize(list);
  assert.equal(cells.length, 1);
  const c = cells[0]!;
  assert.deepEqual([c.attempts, c.success, c.direct, c.relay], [10, 8, 6, 2]);
  assert.equal(c.successRate, 0.8);
  assert.equal(c.directShare, 0.75);
  assert.deepEqual(c.errors, { ICE_FAILED: 1, unknown: 1 });
  assert.equal(c.directPossible, true);
  assert.equal(c.shortOfTheory, true);
  // setup 100..105 (direct) and 100..101 (relay): 8 samples, P50 = 4th, P95 = 8th.
  assert.equal(c.setupP50, 101);
  assert.equal(c.setupP95, 105);
  assert.equal(c.firstFrameP95, 305);
  assert.equal(c.rttP50, 100);
  assert.equal(c.natTypeReports, 17);
  assert.equal(c.natTypeRight, 16 / 17);
  assert.deepEqual(c.natTypeMisses, [{ side: 'camera', reported: 'restricted cone', expected: 'full cone', count: 1 }]);
});

test('a cell is not short of theory when it relays where theory allows no direct path', () => {
  const [c] = summarize(attempts('symmetric', 'symmetric', 3)).cells;
  assert.equal(c?.directPossible, false);
  assert.equal(c?.shortOfTheory, false);
  assert.equal(c?.natTypeRight, 1);
});

test('aggregates weigh cells by the seed mix on both sides, not by their number of attempts', () => {
  // full-cone × full-cone weighs 0.15², symmetric × symmetric 0.25²; none × none weighs nothing.
  const list = [
    ...attempts('full-cone', 'full-cone', 1, { ok: false, path: undefined, error: 'TIMEOUT' }),
    ...attempts('full-cone', 'full-cone', 1, {}, () => 900),
    ...attempts('symmetric', 'symmetric', 50, {}, () => 300),
    ...attempts('none', 'none', 5, { ok: false, path: undefined, error: 'TIMEOUT' }),
  ];
  const { aggregate, cells } = summarize(list);
  assert.equal(cells.length, 3);
  assert.equal(aggregate.length, 1);
  const a = aggregate[0]!;
  const wFull = 0.15 ** 2;
  const wSym = 0.25 ** 2;
  assert.equal(a.cells, 3);
  assert.equal(a.attempts, 57);
  assert.ok(Math.abs(a.weight - (wFull + wSym)) < 1e-12);
  assert.ok(Math.abs(a.success! - (wFull * 0.5 + wSym) / (wFull + wSym)) < 1e-12);
  // Paths are judged over the connections made: full-cone's one success went direct.
  assert.ok(Math.abs(a.directShare! - wFull / (wFull + wSym)) < 1e-12);
  assert.ok(Math.abs(a.theoreticalDirectShare! - wFull / (wFull + wSym)) < 1e-12);
  // One 900 ms sample carries all of full-cone's weight (26 % of the total), 50 samples share
  // symmetric's: the P95 is 900 ms, though 900 is 1 sample in 51.
  assert.equal(a.setupP95, 900);
  assert.equal(a.firstFrameP95, 1100);
});

test('the aggregate splits the setup P95 by the path each attempt took', () => {
  // port-restricted × port-restricted goes direct (900 ms); symmetric × port-restricted relays
  // (1800 ms), and weighs 0.25 · 0.35 against 0.35²: the mixture's P95 is the relay's.
  const list = [
    ...attempts('port-restricted', 'port-restricted', 10, {}, () => 900),
    ...attempts('symmetric', 'port-restricted', 10, {}, () => 1800),
  ];
  const [a] = summarize(list).aggregate;
  assert.equal(a?.setupP95, 1800);
  assert.equal(a?.setupP95Direct, 900);
  assert.equal(a?.setupP95Relay, 1800);
  const directOnly = summarize(attempts('port-restricted', 'port-restricted', 4)).aggregate[0];
  assert.equal(directOnly?.setupP95Relay, undefined);
});

test('over the whole matrix the seed-weighted theoretical share is 76.25 %, conditions apart', () => {
  const list = [...fullMatrix(2), ...fullMatrix(2, { stack: 'chromium', lossPct: 2 })];
  const { aggregate, cells } = summarize(list);
  assert.equal(cells.length, 72);
  assert.deepEqual(aggregate.map((a) => [a.stack, a.delayMs, a.lossPct]), [['chromium', 50, 2], ['node', 50, 0]]);
  for (const a of aggregate) {
    assert.ok(Math.abs(a.weight - 1) < 1e-12);
    assert.ok(Math.abs(a.theoreticalDirectShare! - 0.7625) < 1e-12);
    assert.ok(Math.abs(a.directShare! - 0.7625) < 1e-12);
    assert.equal(a.success, 1);
  }
  assert.deepEqual(checkTargets(summarize(list)), { checked: ['cell-success', 'direct-path', 'weighted-success', 'direct-share', 'latency', 'nat-type'], failures: [], warnings: [] });
});

function failuresOf(summary: Summary, ...args: Parameters<typeof checkTargets> extends [unknown, ...infer R] ? R : never): string[] {
  return checkTargets(summary, ...args).failures.map((f) => f.target);
}

test('targets: a failed attempt fails its cell and, past 0.5 %, the seed-weighted success, not the direct share', () => {
  const list = fullMatrix(10);
  // One failure in 10 on a cell weighing 0.35² costs 1.225 % of seed-weighted success.
  const i = list.findIndex((a) => a.camera === 'port-restricted' && a.app === 'port-restricted');
  list[i] = { ...list[i]!, ok: false, path: undefined, error: 'TURN_UNREACHABLE' };
  const check = checkTargets(summarize(list));
  assert.deepEqual(check.failures.map((f) => f.target), ['cell-success', 'weighted-success']);
  assert.match(check.failures[0]!.reason, /9\/10 succeeded.*1 × TURN_UNREACHABLE/);
  assert.match(check.failures[0]!.where, /camera port-restricted × app port-restricted/);
  assert.match(check.failures[1]!.reason, /seed-weighted success 98\.8 %, below 99\.5 %/);
  // In a cell the seed mix does not weigh, the cell fails, the weighted success does not.
  const unweighted = fullMatrix(10);
  unweighted[0] = { ...unweighted[0]!, ok: false, path: undefined, error: 'TIMEOUT' };
  assert.deepEqual(failuresOf(summarize(unweighted)), ['cell-success']);
  assert.deepEqual(failuresOf(summarize(unweighted), { cellSuccess: false }), []);
});

test('targets: relaying where theory allows direct fails the cell and the direct share; direct where it does not is a warning', () => {
  const list = fullMatrix(4).map((a) => (a.camera === 'port-restricted' && a.app === 'port-restricted' ? { ...a, path: 'relay' as const } : a));
  const check = checkTargets(summarize(list));
  assert.deepEqual(check.failures.map((f) => f.target), ['direct-path', 'direct-share']);
  assert.match(check.failures[1]!.reason, /below the theoretical 76\.3 %/);
  assert.deepEqual(check.warnings, []);

  const suspicious = fullMatrix(4).map((a) => (a.camera === 'symmetric' && a.app === 'symmetric' ? { ...a, path: 'direct' as const } : a));
  const check2 = checkTargets(summarize(suspicious));
  assert.deepEqual(check2.failures, []);
  assert.deepEqual(check2.warnings.map((w) => [w.target, w.where]), [['direct-path', 'node 50 ms 0 % loss, camera symmetric × app symmetric']]);
});

test('targets: setup and first-frame P95 bounds per condition with p2pd in the region, off in the short form', () => {
  const mid = { p2pdMs: 25 };
  const slow = [
    ...fullMatrix(2, { ...mid, setupMs: 1200, firstFrameMs: 1400 }),
    ...fullMatrix(2, { ...mid, lossPct: 2, setupMs: 1900, firstFrameMs: 5000 }),
    ...fullMatrix(2, { delayMs: 150, p2pdMs: 75, setupMs: 5000, firstFrameMs: 5000 }),
  ];
  const check = checkTargets(summarize(slow));
  assert.deepEqual(check.failures.map((f) => [f.target, f.where, f.reason]), [['latency', 'node 50 ms 0 % loss, p2pd 25 ms away', 'setupP95 1200 ms, above 1000 ms']]);
  const slower = fullMatrix(2, { ...mid, setupMs: 900, firstFrameMs: 1600 }).concat(fullMatrix(2, { ...mid, lossPct: 2, setupMs: 2100 }));
  assert.deepEqual(checkTargets(summarize(slower)).failures.map((f) => f.reason), ['setupP95 2100 ms, above 2000 ms', 'firstFrameP95 1600 ms, above 1500 ms']);
  const short = checkTargets(summarize(slower), { latencyTargets: false });
  assert.deepEqual(short.failures, []);
  assert.ok(!short.checked.includes('latency'));
  // A condition without any timing cannot pass silently.
  const untimed = checkTargets(summarize(fullMatrix(1, { ...mid, setupMs: undefined, firstFrameMs: undefined })));
  assert.deepEqual(untimed.warnings.map((w) => w.reason), ['no seed-weighted setupP95 samples to hold against 1000 ms', 'no seed-weighted firstFrameP95 samples to hold against 1500 ms']);
});

test('targets: with p2pd as far from each side as they are apart, a latency miss is a warning naming where p2pd was', () => {
  const far = fullMatrix(2, { setupMs: 1200, firstFrameMs: 1400 }); // no p2pdMs: as far as the peers
  const check = checkTargets(summarize(far));
  assert.deepEqual(check.failures, []);
  assert.deepEqual(check.warnings.map((w) => [w.target, w.where]), [['latency', 'node 50 ms 0 % loss']]);
  assert.match(check.warnings[0]?.reason ?? '', /setupP95 1200 ms, above 1000 ms, with p2pd 50 ms from each side/);
  // The two placements are two conditions, never one mixture.
  const both = summarize([...far, ...fullMatrix(2, { p2pdMs: 25, setupMs: 700 })]);
  assert.deepEqual(both.aggregate.map((a) => [a.p2pdMs, a.setupP95]), [[25, 700], [undefined, 1200]]);
});

test('targets: a wrong NAT type report fails its cell; cells without reports are not judged', () => {
  const list = fullMatrix(2, { natType: undefined });
  const i = list.findIndex((a) => a.camera === 'address-restricted' && a.app === 'none');
  list[i] = { ...list[i]!, natType: { camera: 'port-restricted cone', app: 'open internet' } };
  const check = checkTargets(summarize(list));
  assert.deepEqual(check.failures.map((f) => f.target), ['nat-type']);
  assert.match(check.failures[0]!.reason, /50\.0 % of 2 reports right: camera reported "port-restricted cone" 1× \(expected "restricted cone"\)/);
  assert.deepEqual(checkTargets(summarize(list), { natType: false }).failures, []);
});

/** Tags of an SVG balance: every opening tag is closed, in order. */
function assertBalanced(svg: string): void {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = m;
    if (selfClosing) continue;
    if (closing) assert.equal(stack.pop(), name, `</${name}> closes the open <${stack.at(-1)}>`);
    else stack.push(name!);
  }
  assert.deepEqual(stack, []);
  assert.doesNotMatch(svg.replace(/<[^>]*>/g, ''), /[<>]|&(?!amp;|lt;|gt;|quot;)/);
}

test('the writer writes report.json, report.md with every cell and a well-formed SVG with one cell rect per cell', () => {
  const list = [...fullMatrix(3), ...fullMatrix(2, { stack: 'chromium', lossPct: 2 })];
  list[0] = { ...list[0]!, ok: false, path: undefined, error: 'SESSION_TIMEOUT' };
  const dir = mkdtempSync(join(tmpdir(), 'p2pd-report-'));
  try {
    const report = buildReport(list, { meta: machineMeta(new Date('2025-01-02T03:04:05Z')) });
    const paths = writeReport(join(dir, 'out'), report);

    const json = JSON.parse(readFileSync(paths.json, 'utf8')) as typeof report;
    assert.equal(json.attempts.length, list.length);
    assert.equal(json.summary.cells.length, 72);
    assert.equal(json.meta.date, '2025-01-02T03:04:05.000Z');
    assert.deepEqual(json.targets.failures.map((f) => f.target), ['cell-success']);

    const md = readFileSync(paths.md, 'utf8');
    assert.equal(md, renderMarkdown(report));
    assert.match(md, /^## node 50 ms 0 % loss$/m);
    assert.match(md, /^## chromium 50 ms 2 % loss$/m);
    const rows = md.split('\n').filter((l) => /^\| \*\*/.test(l));
    assert.equal(rows.length, 12);
    for (const row of rows) assert.equal(row.split(' | ').length, 7, row);
    assert.match(md, /\| \*\*none\*\* \| 2\/3 · 100 % direct · P95 102 ms \|/);
    assert.match(md, /\*\*symmetric\*\* \|( [^|]+ \|){4} 3\/3 · 0 % direct · P95 102 ms † \|/);
    assert.match(md, /1 × SESSION_TIMEOUT/);
    assert.match(md, /❌ cell-success: 1 failure/);
    assert.match(md, /✅ direct-share/);

    const svg = readFileSync(paths.svg, 'utf8');
    assert.equal(svg, renderSvg(report.summary));
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assertBalanced(svg);
    assert.equal(svg.match(/<rect class="cell"/g)?.length, 72);
    assert.equal(svg.match(/<g class="grid">/g)?.length, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the SVG marks a cell short of theory with a dashed border and leaves unmeasured pairs empty', () => {
  const list = [...attempts('port-restricted', 'port-restricted', 2, { path: 'relay' }), ...attempts('symmetric', 'full-cone', 1)];
  const svg = renderSvg(summarize(list));
  assertBalanced(svg);
  assert.equal(svg.match(/<rect class="cell"/g)?.length, 2);
  assert.equal(svg.match(/<rect class="empty"/g)?.length, 2);
  assert.equal(svg.match(/<rect class="cell"[^>]*stroke-dasharray/g)?.length, 1);
});

test('a cell where nothing connected has no direct share and stays out of the aggregate direct share', () => {
  const list = [
    ...attempts('full-cone', 'full-cone', 2, { ok: false, path: undefined, error: 'ICE_FAILED' }),
    ...attempts('symmetric', 'symmetric', 2),
  ];
  const { cells, aggregate } = summarize(list);
  assert.equal(cells[0]?.directShare, undefined);
  assert.equal(cells[0]?.setupP95, undefined);
  assert.equal(aggregate[0]?.directShare, 0);
  assert.equal(aggregate[0]?.theoreticalDirectShare, 0);
  const svg = renderSvg(summarize(list));
  assert.match(svg, />ICE_FAILED<\/text>/);
  assert.match(svg, />P95 —<\/text>/);
});

test('a NAT type is right when exact, or "cone" from a stack that tests only the mapping', async () => {
  const { natTypeRight } = await import('../../lab/theory.ts');
  assert.equal(natTypeRight('port-restricted', 'port-restricted cone'), true);
  assert.equal(natTypeRight('port-restricted', 'cone'), true);
  assert.equal(natTypeRight('port-restricted', 'full cone'), false);
  assert.equal(natTypeRight('symmetric', 'cone'), false);
  assert.equal(natTypeRight('symmetric', 'symmetric'), true);
  assert.equal(natTypeRight('udp-blocked', 'cone'), false);
});

test('where setup goes: the median of each step over the successful attempts, printed in report.md', () => {
  const list = [
    ...attempts('full-cone', 'full-cone', 3, {}, (i) => 700 + i).map((a, i) => ({ ...a, phases: { session: 100 + i, answer: 300 + 10 * i, channelOpen: 700 + i } })),
    ...attempts('full-cone', 'none', 1, { ok: false, phases: { session: 5000 } }),
  ];
  const agg = summarize(list).aggregate[0];
  assert.deepEqual(agg?.steps, { session: 101, answer: 310, channelOpen: 701 }, 'medians, the failed attempt left out');
  const md = renderMarkdown(buildReport(list, { meta: machineMeta(new Date(0)) }));
  assert.match(md, /## Where setup goes/);
  assert.match(md, /\| node \| 50 ms \| 0 % \| 50 ms \| — \| 101 ms \| — \| 310 ms \|/);
});

test('targets: p2pd midway at an odd delay (25 ms → 13 ms, whole ms as the lab shapes) is in the region', () => {
  const check = checkTargets(summarize(fullMatrix(2, { delayMs: 25, p2pdMs: 13, setupMs: 1200 })), { latency: [{ metric: 'setupP95', delayMs: 25, lossPct: 0, maxMs: 1000 }] });
  assert.deepEqual(check.failures.map((f) => f.target), ['latency']);
});
