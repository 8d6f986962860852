/**
 * The connectivity lab's figures: attempts grouped into cells (camera NAT × app NAT × stack × delay
 * × loss), seed-weighted aggregates per condition, and the issue's targets checked against them.
 * Pure: lab/reportWrite.ts turns the result into files. Methods are described in docs/lab.md
 * "The report".
 */
import { SETUP_STEPS, type SetupPhases } from '../src/sdk/setupTimeline.ts';
import { EXPECTED_NAT_TYPE, NAT_KINDS, SEED_MIX, directPossible, natTypeRight, pairWeight, type NatKind, type NatMix } from './theory.ts';

export type Stack = 'node' | 'chromium';

/**
 * The receiving side of the first video frame, from the browser's inbound-rtp stats sampled every
 * 20 ms: ms since connect() of the first packet, the first complete frame, the first decoded, and
 * the counts at the first presented frame.
 */
export interface VideoSteps {
  firstPacketMs?: number;
  firstFrameReceivedMs?: number;
  firstDecodedMs?: number;
  framesReceived?: number;
  framesDecoded?: number;
  keyFramesDecoded?: number;
  framesDropped?: number;
  pliCount?: number;
  nackCount?: number;
  packetsLost?: number;
}

/** One connection attempt: a camera behind `camera`, an app behind `app`, on one network condition. */
export interface Attempt {
  camera: NatKind;
  app: NatKind;
  stack: Stack;
  delayMs: number;
  lossPct: number;
  /** One-way delay between p2pd and each site; absent: `delayMs` (as far as the peers are apart). */
  p2pdMs?: number;
  ok: boolean;
  /** Error code when !ok. */
  error?: string;
  path?: 'direct' | 'relay';
  setupMs?: number;
  firstFrameMs?: number;
  rttMs?: number;
  /** The NAT type each SDK reported. */
  natType?: { camera?: string; app?: string };
  /** The app's setup steps, ms since connect() (src/sdk/setupTimeline.ts). */
  phases?: SetupPhases;
  /** Chromium: how the video came up. */
  video?: VideoSteps;
}

/** A network condition: one heatmap grid, one aggregate row. */
export interface Condition {
  stack: Stack;
  /** One-way delay and loss between the camera and the app. */
  delayMs: number;
  lossPct: number;
  /** One-way delay between p2pd and either side; absent: `delayMs` (docs/lab.md "Where p2pd is"). */
  p2pdMs?: number;
}

/** p2pd's one-way delay to each site under `c`. */
export const p2pdDelay = (c: Condition): number => c.p2pdMs ?? c.delayMs;

/** Half a one-way delay in whole ms: each site's link in the lab, and p2pd's distance when midway. */
export const halfway = (delayMs: number): number => Math.round(delayMs / 2);

/**
 * p2pd is in the region: no farther from either side than half the way between them, as the
 * seed's deployment places it (nearest node, GeoIP). The latency targets are stated for that.
 */
export const p2pdInRegion = (c: Condition): boolean => p2pdDelay(c) <= halfway(c.delayMs);

export interface NatTypeMiss {
  side: 'camera' | 'app';
  reported: string;
  expected: string;
  count: number;
}

export interface Cell extends Condition {
  camera: NatKind;
  app: NatKind;
  attempts: number;
  success: number;
  /** Successful attempts on a direct path, and on a relayed one. */
  direct: number;
  relay: number;
  /** success / attempts. */
  successRate: number;
  /** direct / success: how the connections that were made went; undefined without any. */
  directShare?: number;
  setupP50?: number;
  setupP95?: number;
  firstFrameP95?: number;
  rttP50?: number;
  /** Error code → number of failed attempts (attempts without a code count as "unknown"). */
  errors: Record<string, number>;
  directPossible: boolean;
  /** Theory allows a direct path, yet some successful attempt did not take one. */
  shortOfTheory: boolean;
  /** NAT types reported by either side, and the share of them equal to EXPECTED_NAT_TYPE. */
  natTypeReports: number;
  natTypeRight?: number;
  natTypeMisses: NatTypeMiss[];
}

/** Seed-weighted figures of one condition; undefined where the measured cells weigh nothing. */
export interface Aggregate extends Condition {
  cells: number;
  attempts: number;
  /** Sum of the weights of the measured cells: 1 when every pair of weighted kinds was measured. */
  weight: number;
  success?: number;
  /** Over the cells with a successful attempt (failures are the success figures' to count). */
  directShare?: number;
  /** What theory allows over those same cells, with the same weights. */
  theoreticalDirectShare?: number;
  setupP95?: number;
  /**
   * The same mixture percentile over the attempts that went direct, and over those relayed: a
   * relayed setup crosses the relay's round trips, so at 50 ms the mixture's P95 is the relay's
   * (docs/lab.md "What setup measures").
   */
  setupP95Direct?: number;
  setupP95Relay?: number;
  firstFrameP95?: number;
  /** Median of each setup step over the successful attempts (unweighted): where setup goes. */
  steps?: SetupPhases;
}

export interface Summary {
  cells: Cell[];
  aggregate: Aggregate[];
}

export interface WeightedSample {
  value: number;
  weight: number;
}

/**
 * Weighted nearest-rank percentile: the smallest value whose cumulative weight reaches p % of the
 * total. With equal weights this is the plain nearest-rank method (rank ⌈p/100 · N⌉). Undefined
 * when there are no samples or they weigh nothing.
 */
export function weightedPercentile(samples: readonly WeightedSample[], p: number): number | undefined {
  const sorted = samples.filter((s) => s.weight > 0).sort((a, b) => a.value - b.value);
  const total = sorted.reduce((sum, s) => sum + s.weight, 0);
  if (sorted.length === 0) return undefined;
  // The tolerance only forgives float rounding of fractional weights; integer weights sum exactly.
  const target = (p * total) / 100 - total * 1e-9;
  let cumulative = 0;
  for (const s of sorted) {
    cumulative += s.weight;
    if (cumulative >= target) return s.value;
  }
  return sorted[sorted.length - 1]?.value;
}

/** Nearest-rank percentile of plain values. */
export function percentile(values: readonly number[], p: number): number | undefined {
  return weightedPercentile(values.map((value) => ({ value, weight: 1 })), p);
}

export const describeCondition = (c: Condition): string =>
  `${c.stack} ${c.delayMs} ms ${c.lossPct} % loss${p2pdDelay(c) === c.delayMs ? '' : `, p2pd ${p2pdDelay(c)} ms away`}`;

/** Items by key, keys in first-seen order. */
export function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

function defined(values: (number | undefined)[]): number[] {
  return values.filter((v): v is number => v !== undefined);
}

function compareConditions(a: Condition, b: Condition): number {
  return a.stack.localeCompare(b.stack) || a.delayMs - b.delayMs || a.lossPct - b.lossPct || p2pdDelay(a) - p2pdDelay(b);
}

function natTypeFigures(camera: NatKind, app: NatKind, attempts: readonly Attempt[]): Pick<Cell, 'natTypeReports' | 'natTypeRight' | 'natTypeMisses'> {
  let reports = 0;
  let right = 0;
  const misses = new Map<string, NatTypeMiss>();
  for (const a of attempts) {
    for (const [side, kind] of [['camera', camera], ['app', app]] as const) {
      const reported = a.natType?.[side];
      if (reported === undefined || reported === 'unknown') continue;
      reports++;
      const expected = EXPECTED_NAT_TYPE[kind];
      if (natTypeRight(kind, reported)) {
        right++;
        continue;
      }
      const key = `${side}|${reported}`;
      const miss = misses.get(key) ?? { side, reported, expected, count: 0 };
      miss.count++;
      misses.set(key, miss);
    }
  }
  return { natTypeReports: reports, natTypeRight: reports > 0 ? right / reports : undefined, natTypeMisses: [...misses.values()] };
}

/** A cell's latency samples, for the aggregate's mixture percentiles. */
interface CellSamples {
  setups: number[];
  setupsDirect: number[];
  setupsRelay: number[];
  firstFrames: number[];
}

/** A cell's figures, and its latency samples. */
function summarizeCell(attempts: readonly Attempt[]): { cell: Cell; samples: CellSamples } {
  const first = attempts[0] as Attempt;
  const { camera, app, stack, delayMs, lossPct } = first;
  const p2pdMs = p2pdDelay(first);
  const ok = attempts.filter((a) => a.ok);
  const direct = ok.filter((a) => a.path === 'direct').length;
  const relay = ok.filter((a) => a.path === 'relay').length;
  const errors: Record<string, number> = {};
  for (const a of attempts) {
    if (a.ok) continue;
    const code = a.error ?? 'unknown';
    errors[code] = (errors[code] ?? 0) + 1;
  }
  const setups = defined(ok.map((a) => a.setupMs));
  const firstFrames = defined(ok.map((a) => a.firstFrameMs));
  const possible = directPossible(camera, app);
  const cell: Cell = {
    camera,
    app,
    stack,
    delayMs,
    lossPct,
    ...(p2pdMs === delayMs ? {} : { p2pdMs }),
    attempts: attempts.length,
    success: ok.length,
    direct,
    relay,
    successRate: ok.length / attempts.length,
    directShare: ok.length > 0 ? direct / ok.length : undefined,
    setupP50: percentile(setups, 50),
    setupP95: percentile(setups, 95),
    firstFrameP95: percentile(firstFrames, 95),
    rttP50: percentile(defined(ok.map((a) => a.rttMs)), 50),
    errors,
    directPossible: possible,
    shortOfTheory: possible && direct < ok.length,
    ...natTypeFigures(camera, app, attempts),
  };
  const setupsOn = (path: string): number[] => defined(ok.filter((a) => a.path === path).map((a) => a.setupMs));
  return { cell, samples: { setups, setupsDirect: setupsOn('direct'), setupsRelay: setupsOn('relay'), firstFrames } };
}

/**
 * Weighted mean of `value` over cells, each weighing pairWeight(mix, camera, app); undefined when
 * the cells weigh nothing.
 */
function weightedMean(cells: readonly Cell[], mix: NatMix, value: (c: Cell) => number): number | undefined {
  let sum = 0;
  let weight = 0;
  for (const c of cells) {
    const w = pairWeight(mix, c.camera, c.app);
    sum += w * value(c);
    weight += w;
  }
  return weight > 0 ? sum / weight : undefined;
}

/**
 * A latency percentile over the mixture: each cell's samples share the cell's weight equally, so a
 * cell weighs its pair's share of the field whatever its number of attempts.
 */
function mixturePercentile(cells: readonly Cell[], valuesOf: (c: Cell) => readonly number[], mix: NatMix, p: number): number | undefined {
  const samples: WeightedSample[] = [];
  for (const c of cells) {
    const values = valuesOf(c);
    const w = pairWeight(mix, c.camera, c.app) / values.length;
    for (const value of values) samples.push({ value, weight: w });
  }
  return weightedPercentile(samples, p);
}

/** Groups attempts into cells and weighs the cells of each condition with `mix` on both sides. */
export function summarize(attempts: readonly Attempt[], mix: NatMix = SEED_MIX): Summary {
  const order = (k: NatKind): number => NAT_KINDS.indexOf(k);
  const cells: Cell[] = [];
  const samples = new Map<Cell, CellSamples>();
  for (const group of groupBy(attempts, (a) => `${describeCondition(a)}|${a.camera}|${a.app}`).values()) {
    const { cell, samples: s } = summarizeCell(group);
    cells.push(cell);
    samples.set(cell, s);
  }
  const of = (pick: keyof CellSamples) => (c: Cell): readonly number[] => samples.get(c)?.[pick] ?? [];
  cells.sort((a, b) => compareConditions(a, b) || order(a.camera) - order(b.camera) || order(a.app) - order(b.app));

  const stepsOf = new Map<string, SetupPhases>();
  for (const [key, group] of groupBy(attempts.filter((a) => a.ok), describeCondition)) stepsOf.set(key, stepMedians(group));
  const aggregate: Aggregate[] = [];
  for (const [key, list] of groupBy(cells, describeCondition)) {
    const { stack, delayMs, lossPct, p2pdMs } = list[0] as Cell;
    const connected = list.filter((c) => c.success > 0);
    aggregate.push({
      stack,
      delayMs,
      lossPct,
      ...(p2pdMs === undefined ? {} : { p2pdMs }),
      cells: list.length,
      attempts: list.reduce((n, c) => n + c.attempts, 0),
      weight: list.reduce((w, c) => w + pairWeight(mix, c.camera, c.app), 0),
      success: weightedMean(list, mix, (c) => c.successRate),
      directShare: weightedMean(connected, mix, (c) => c.directShare ?? 0),
      theoreticalDirectShare: weightedMean(connected, mix, (c) => (c.directPossible ? 1 : 0)),
      setupP95: mixturePercentile(list, of('setups'), mix, 95),
      setupP95Direct: mixturePercentile(list, of('setupsDirect'), mix, 95),
      setupP95Relay: mixturePercentile(list, of('setupsRelay'), mix, 95),
      firstFrameP95: mixturePercentile(list, of('firstFrames'), mix, 95),
      ...(Object.keys(stepsOf.get(key) ?? {}).length > 0 ? { steps: stepsOf.get(key) } : {}),
    });
  }
  return { cells, aggregate };
}

/** The median (nearest rank) of each setup step the attempts recorded. */
export function stepMedians(attempts: readonly Attempt[]): SetupPhases {
  const out: SetupPhases = {};
  for (const step of SETUP_STEPS) {
    const p50 = percentile(defined(attempts.map((a) => a.phases?.[step])), 50);
    if (p50 !== undefined) out[step] = p50;
  }
  return out;
}

/** A latency bound on the seed-weighted P95 of one condition (both stacks). */
export interface LatencyTarget {
  metric: 'setupP95' | 'firstFrameP95';
  delayMs: number;
  lossPct: number;
  maxMs: number;
}

export interface Targets {
  /** Every cell succeeds in at least this share of attempts (the issue: 100 %). */
  cellSuccess: number | false;
  /** Direct in every successful attempt where theory allows it (a failure), relay where it does not (a warning). */
  directWherePossible: boolean;
  /** Seed-weighted success per condition (the issue: 99.5 %). */
  weightedSuccess: number | false;
  /** Seed-weighted direct share at least the theoretical one. */
  directShareVsTheory: boolean;
  latencyTargets: boolean;
  latency: readonly LatencyTarget[];
  /** Every NAT type reported equals the expected one. */
  natType: boolean;
}

export const ISSUE_TARGETS: Readonly<Targets> = {
  cellSuccess: 1,
  directWherePossible: true,
  weightedSuccess: 0.995,
  directShareVsTheory: true,
  latencyTargets: true,
  latency: [
    { metric: 'setupP95', delayMs: 50, lossPct: 0, maxMs: 1000 },
    { metric: 'setupP95', delayMs: 50, lossPct: 2, maxMs: 2000 },
    { metric: 'firstFrameP95', delayMs: 50, lossPct: 0, maxMs: 1500 },
  ],
  natType: true,
};

export type TargetName = 'cell-success' | 'direct-path' | 'weighted-success' | 'direct-share' | 'latency' | 'nat-type';

export interface Finding {
  target: TargetName;
  /** The cell or condition, e.g. "node 50 ms 0 % symmetric × symmetric". */
  where: string;
  reason: string;
}

export interface TargetCheck {
  /** The targets that were checked (the others were switched off). */
  checked: TargetName[];
  failures: Finding[];
  warnings: Finding[];
}

const describeCell = (c: Cell): string => `${describeCondition(c)}, camera ${c.camera} × app ${c.app}`;
const pct = (share: number): string => `${(share * 100).toFixed(1)} %`;

/** The issue's targets against a summary; `targets` switches some off or moves their bounds. */
export function checkTargets(summary: Summary, targets: Partial<Targets> = {}): TargetCheck {
  const t: Targets = { ...ISSUE_TARGETS, ...targets };
  const checked: TargetName[] = [];
  const failures: Finding[] = [];
  const warnings: Finding[] = [];

  if (t.cellSuccess !== false) {
    checked.push('cell-success');
    for (const c of summary.cells) {
      if (c.successRate >= t.cellSuccess) continue;
      const errors = Object.entries(c.errors).map(([code, n]) => `${n} × ${code}`).join(', ');
      failures.push({ target: 'cell-success', where: describeCell(c), reason: `${c.success}/${c.attempts} succeeded, below ${pct(t.cellSuccess)} (${errors})` });
    }
  }
  if (t.directWherePossible) {
    checked.push('direct-path');
    for (const c of summary.cells) {
      if (c.shortOfTheory) {
        failures.push({ target: 'direct-path', where: describeCell(c), reason: `theory allows a direct path, but only ${c.direct} of ${c.success} successful attempts were direct` });
      } else if (!c.directPossible && c.direct > 0) {
        warnings.push({ target: 'direct-path', where: describeCell(c), reason: `${c.direct} attempts went direct where theory allows none: is the emulated NAT what it claims?` });
      }
    }
  }
  if (t.weightedSuccess !== false) checked.push('weighted-success');
  if (t.directShareVsTheory) checked.push('direct-share');
  for (const a of summary.aggregate) {
    const where = describeCondition(a);
    if (t.weightedSuccess !== false && a.success !== undefined && a.success < t.weightedSuccess) {
      failures.push({ target: 'weighted-success', where, reason: `seed-weighted success ${pct(a.success)}, below ${pct(t.weightedSuccess)}` });
    }
    if (t.directShareVsTheory && a.directShare !== undefined && a.theoreticalDirectShare !== undefined && a.directShare < a.theoreticalDirectShare - 1e-9) {
      failures.push({ target: 'direct-share', where, reason: `seed-weighted direct share ${pct(a.directShare)}, below the theoretical ${pct(a.theoreticalDirectShare)}` });
    }
  }
  if (t.latencyTargets) {
    checked.push('latency');
    for (const target of t.latency) {
      for (const a of summary.aggregate) {
        if (a.delayMs !== target.delayMs || a.lossPct !== target.lossPct) continue;
        const value = a[target.metric];
        const where = describeCondition(a);
        if (value === undefined) {
          warnings.push({ target: 'latency', where, reason: `no seed-weighted ${target.metric} samples to hold against ${target.maxMs} ms` });
        } else if (value > target.maxMs && !p2pdInRegion(a)) {
          // A relayed round trip is then twice the direct one: the bounds are not stated for it.
          warnings.push({ target: 'latency', where, reason: `${target.metric} ${value} ms, above ${target.maxMs} ms, with p2pd ${p2pdDelay(a)} ms from each side (out of region: docs/lab.md "Where p2pd is")` });
        } else if (value > target.maxMs) {
          failures.push({ target: 'latency', where, reason: `${target.metric} ${value} ms, above ${target.maxMs} ms` });
        }
      }
    }
  }
  if (t.natType) {
    checked.push('nat-type');
    for (const c of summary.cells) {
      if (c.natTypeRight === undefined || c.natTypeRight === 1) continue;
      const misses = c.natTypeMisses.map((m) => `${m.side} reported "${m.reported}" ${m.count}× (expected "${m.expected}")`).join('; ');
      failures.push({ target: 'nat-type', where: describeCell(c), reason: `${pct(c.natTypeRight)} of ${c.natTypeReports} reports right: ${misses}` });
    }
  }
  return { checked, failures, warnings };
}
