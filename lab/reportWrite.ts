/**
 * Writes the connectivity lab's report: report.json (attempts, summary, target check, machine),
 * report.md (a table per condition, the aggregates, the targets) and report.svg (a heatmap per
 * condition, self-contained). The files are described in docs/lab.md "The report".
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, hostname, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { NAT_KINDS, SEED_MIX, type NatKind, type NatMix } from './theory.ts';
import { SETUP_STEPS } from '../src/sdk/setupTimeline.ts';
import {
  checkTargets, describeCondition, groupBy, p2pdDelay, percentile, summarize,
  type Attempt, type Cell, type Condition, type Summary, type TargetCheck, type Targets,
} from './report.ts';

export interface ReportMeta {
  /** ISO 8601 time the report was written. */
  date: string;
  host: string;
  os: string;
  cpu: string;
  cpus: number;
  memoryGiB: number;
  node: string;
  p2pd: string;
}

export interface Report {
  meta: ReportMeta;
  attempts: readonly Attempt[];
  summary: Summary;
  targets: TargetCheck;
}

export function machineMeta(date = new Date()): ReportMeta {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  const cores = cpus();
  return {
    date: date.toISOString(),
    host: hostname(),
    os: `${process.platform} ${release()} ${process.arch}`,
    cpu: cores[0]?.model ?? 'unknown',
    cpus: cores.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    p2pd: pkg.version,
  };
}

export function buildReport(attempts: readonly Attempt[], opts: { targets?: Partial<Targets>; mix?: NatMix; meta?: ReportMeta } = {}): Report {
  const summary = summarize(attempts, opts.mix ?? SEED_MIX);
  return { meta: opts.meta ?? machineMeta(), attempts, summary, targets: checkTargets(summary, opts.targets) };
}

/** The conditions in the summary's order, each with its cells. */
function byCondition(summary: Summary): { condition: Condition; cells: Map<string, Cell> }[] {
  const groups = groupBy(summary.cells, describeCondition);
  return summary.aggregate.map((condition) => ({
    condition,
    cells: new Map((groups.get(describeCondition(condition)) ?? []).map((c) => [`${c.camera}|${c.app}`, c])),
  }));
}

/** The NAT kinds measured on each axis, in NAT_KINDS order, so all grids share their axes. */
function axes(summary: Summary): { rows: NatKind[]; cols: NatKind[] } {
  const cameras = new Set(summary.cells.map((c) => c.camera));
  const apps = new Set(summary.cells.map((c) => c.app));
  return { rows: NAT_KINDS.filter((k) => cameras.has(k)), cols: NAT_KINDS.filter((k) => apps.has(k)) };
}

const ms = (v: number | undefined): string => (v === undefined ? '—' : `${Math.round(v)} ms`);
const share = (v: number | undefined): string => (v === undefined ? '—' : `${(v * 100).toFixed(1)} %`);
const wholePct = (v: number | undefined): string => (v === undefined ? '—' : `${Math.round(v * 100)} %`);

function markdownCell(c: Cell | undefined): string {
  if (!c) return '—';
  const marks = (c.shortOfTheory ? ' ⚠' : '') + (c.directPossible ? '' : ' †');
  return `${c.success}/${c.attempts} · ${wholePct(c.directShare)} direct · P95 ${ms(c.setupP95)}${marks}`;
}

export function renderMarkdown(report: Report): string {
  const { summary, targets, meta } = report;
  const { rows, cols } = axes(summary);
  const out: string[] = [];
  out.push('# Connectivity lab report', '');
  out.push(`${meta.date} on ${meta.host}: ${meta.cpus} × ${meta.cpu}, ${meta.memoryGiB} GiB, ${meta.os}, Node ${meta.node}, p2pd ${meta.p2pd}. ${report.attempts.length} attempts.`, '');
  out.push('Cell: successes/attempts · share of the successful attempts on a direct path · setup P95 (nearest rank).');
  out.push('⚠ theory allows a direct path but some successful attempt was relayed; † theory allows no direct path.', '');
  for (const { condition, cells } of byCondition(summary)) {
    out.push(`## ${describeCondition(condition)}`, '');
    out.push(`| camera \\ app | ${cols.join(' | ')} |`, `|---|${cols.map(() => '---|').join('')}`);
    for (const camera of rows) out.push(`| **${camera}** | ${cols.map((app) => markdownCell(cells.get(`${camera}|${app}`))).join(' | ')} |`);
    const failed = [...cells.values()].filter((c) => c.success < c.attempts);
    if (failed.length > 0) {
      out.push('', 'Failed attempts:');
      for (const c of failed) out.push(`- camera ${c.camera} × app ${c.app}: ${Object.entries(c.errors).map(([code, n]) => `${n} × ${code}`).join(', ')}`);
    }
    out.push('');
  }
  out.push('## Seed-weighted aggregate', '');
  out.push('Each cell weighs mix(camera) · mix(app) with the seed mix on both sides; latency P95s are over the mixture, each cell\'s samples sharing its weight.', '');
  out.push('| stack | delay | loss | p2pd | cells | attempts | weight | success | direct | direct in theory | setup P95 | direct | relayed | first frame P95 |', '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const a of summary.aggregate) {
    out.push(`| ${a.stack} | ${a.delayMs} ms | ${a.lossPct} % | ${p2pdDelay(a)} ms | ${a.cells} | ${a.attempts} | ${a.weight.toFixed(4)} | ${share(a.success)} | ${share(a.directShare)} | ${share(a.theoreticalDirectShare)} | ${ms(a.setupP95)} | ${ms(a.setupP95Direct)} | ${ms(a.setupP95Relay)} | ${ms(a.firstFrameP95)} |`);
  }
  const withSteps = summary.aggregate.filter((a) => a.steps !== undefined);
  if (withSteps.length > 0) {
    out.push('', '## Where setup goes', '');
    out.push('Median ms since the app called connect(), over the successful attempts, for each setup step (src/sdk/setupTimeline.ts; docs/client.md "Setup time").', '');
    out.push(`| stack | delay | loss | p2pd | ${SETUP_STEPS.join(' | ')} | setup P50 |`, `|---|---|---|---|${SETUP_STEPS.map(() => '---|').join('')}---|`);
    for (const a of withSteps) {
      const p50 = percentile(report.attempts.filter((t) => t.ok && describeCondition(t) === describeCondition(a)).map((t) => t.setupMs ?? 0), 50);
      out.push(`| ${a.stack} | ${a.delayMs} ms | ${a.lossPct} % | ${p2pdDelay(a)} ms | ${SETUP_STEPS.map((s) => ms(a.steps?.[s])).join(' | ')} | ${ms(p50)} |`);
    }
  }
  out.push('', '## Targets', '');
  for (const name of targets.checked) {
    const n = targets.failures.filter((f) => f.target === name).length;
    out.push(`- ${n === 0 ? '✅' : '❌'} ${name}${n === 0 ? '' : `: ${n} failure${n === 1 ? '' : 's'}`}`);
  }
  for (const [title, list] of [['Failures', targets.failures], ['Warnings', targets.warnings]] as const) {
    if (list.length === 0) continue;
    out.push('', `### ${title}`, '');
    for (const f of list) out.push(`- **${f.target}** ${f.where}: ${f.reason}`);
  }
  out.push('');
  return out.join('\n');
}

const CELL_W = 128;
const CELL_H = 66;
const LABEL_W = 150;
const HEADER_H = 66;
const GRID_GAP = 36;
const LEGEND_H = 96;
const GRIDS_PER_ROW = 2;
const DIRECT_COLOUR = '#1f5fa8';
const RELAY_COLOUR = '#7a7a7a';

const escapeXml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * Red (0 %) to green (100 %). The hue follows rate⁸ so that the range that matters against a
 * 100 % target (80 % to 100 %) spans most of the scale.
 */
export function successColour(rate: number): string {
  return `hsl(${Math.round(120 * Math.max(0, Math.min(1, rate)) ** 8)}, 62%, 70%)`;
}

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${x}" y="${y}"${attrs ? ` ${attrs}` : ''}>${escapeXml(s)}</text>`;
}

function svgCell(c: Cell, x: number, y: number): string {
  const parts: string[] = [];
  const border = c.shortOfTheory ? 'stroke="#000" stroke-width="2.5" stroke-dasharray="6 4"' : 'stroke="#fff" stroke-width="2"';
  parts.push(`<rect class="cell" x="${x}" y="${y}" width="${CELL_W}" height="${CELL_H}" fill="${successColour(c.successRate)}" ${border}><title>${escapeXml(`camera ${c.camera} × app ${c.app}: ${c.success}/${c.attempts} ok, ${c.direct} direct, ${c.relay} relay`)}</title></rect>`);
  if (!c.directPossible) parts.push(`<path d="M${x + CELL_W - 14} ${y + 2} h12 v12 z" fill="#333"/>`);
  const cx = x + CELL_W / 2;
  parts.push(text(cx, y + 18, `${c.success}/${c.attempts}`, 'font-size="14" font-weight="bold"'));
  // Text: how the connections made went; bar: direct, relayed and failed (empty) attempts.
  const paths = c.success === 0
    ? Object.keys(c.errors).join(', ')
    : [c.direct > 0 ? `D ${wholePct(c.directShare)}` : '', c.relay > 0 ? `R ${wholePct(c.relay / c.success)}` : ''].filter(Boolean).join(' · ') || 'path unknown';
  parts.push(text(cx, y + 34, paths, 'font-size="11"'));
  parts.push(text(cx, y + 49, `P95 ${ms(c.setupP95)}`, 'font-size="11"'));
  const bx = x + 8;
  const bw = CELL_W - 16;
  const by = y + CELL_H - 8;
  const directEnd = bx + (bw * c.direct) / c.attempts;
  parts.push(`<line x1="${bx}" y1="${by}" x2="${bx + bw}" y2="${by}" stroke="#fff" stroke-width="5"/>`);
  if (c.direct > 0) parts.push(`<line x1="${bx}" y1="${by}" x2="${directEnd}" y2="${by}" stroke="${DIRECT_COLOUR}" stroke-width="5"/>`);
  if (c.relay > 0) parts.push(`<line x1="${directEnd}" y1="${by}" x2="${directEnd + (bw * c.relay) / c.attempts}" y2="${by}" stroke="${RELAY_COLOUR}" stroke-width="5"/>`);
  return parts.join('');
}

function svgLegend(y: number): string {
  const parts: string[] = [text(10, y + 14, 'success rate', 'text-anchor="start" font-weight="bold"')];
  const stops = [0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 1];
  stops.forEach((rate, i) => {
    const x = 10 + i * 56;
    parts.push(`<rect class="legend" x="${x}" y="${y + 22}" width="52" height="20" fill="${successColour(rate)}"/>`);
    parts.push(text(x + 26, y + 56, `${i === 0 ? '≤ ' : ''}${Math.round(rate * 100)} %`, 'font-size="11"'));
  });
  const x0 = 440;
  parts.push(text(x0, y + 14, 'in a cell', 'text-anchor="start" font-weight="bold"'));
  parts.push(`<line x1="${x0}" y1="${y + 30}" x2="${x0 + 30}" y2="${y + 30}" stroke="${DIRECT_COLOUR}" stroke-width="5"/>`);
  parts.push(`<line x1="${x0 + 30}" y1="${y + 30}" x2="${x0 + 50}" y2="${y + 30}" stroke="${RELAY_COLOUR}" stroke-width="5"/>`);
  parts.push(text(x0 + 58, y + 34, 'D / R: share of successful attempts direct / relayed; bar: attempts direct (blue), relayed (grey), failed (white)', 'text-anchor="start" font-size="11"'));
  parts.push(`<rect class="legend" x="${x0}" y="${y + 42}" width="50" height="16" fill="none" stroke="#000" stroke-width="2" stroke-dasharray="6 4"/>`);
  parts.push(text(x0 + 58, y + 54, 'dashed border: theory allows a direct path, but some successful attempt was relayed', 'text-anchor="start" font-size="11"'));
  parts.push(`<path d="M${x0 + 38} ${y + 64} h12 v12 z" fill="#333"/>`);
  parts.push(text(x0 + 58, y + 76, 'corner: theory allows no direct path (RFC 5128 §3.3); "P95": setup P95 (nearest rank)', 'text-anchor="start" font-size="11"'));
  parts.push(text(10, y + 76, 'rows: camera NAT (p2pd device), columns: app NAT', 'text-anchor="start" font-size="11"'));
  return parts.join('');
}

export function renderSvg(summary: Summary, title = 'Connectivity lab'): string {
  const { rows, cols } = axes(summary);
  const gridW = LABEL_W + cols.length * CELL_W;
  const gridH = HEADER_H + rows.length * CELL_H;
  const conditions = byCondition(summary);
  const perRow = Math.min(GRIDS_PER_ROW, Math.max(1, conditions.length));
  const top = 34 + LEGEND_H;
  const width = Math.max(perRow * gridW + (perRow - 1) * GRID_GAP + 20, 1000);
  const height = top + Math.ceil(conditions.length / perRow) * (gridH + GRID_GAP);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12" text-anchor="middle" fill="#222">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  parts.push(text(10, 24, title, 'text-anchor="start" font-size="18" font-weight="bold"'));
  parts.push(svgLegend(34));
  conditions.forEach(({ condition, cells }, i) => {
    const gx = 10 + (i % perRow) * (gridW + GRID_GAP);
    const gy = top + Math.floor(i / perRow) * (gridH + GRID_GAP);
    parts.push(`<g class="grid">`);
    parts.push(text(gx, gy + 16, describeCondition(condition), 'text-anchor="start" font-size="15" font-weight="bold"'));
    parts.push(text(gx + LABEL_W + (cols.length * CELL_W) / 2, gy + 36, 'app NAT →', 'font-style="italic"'));
    cols.forEach((app, j) => parts.push(text(gx + LABEL_W + j * CELL_W + CELL_W / 2, gy + HEADER_H - 8, app, 'font-weight="bold"')));
    const midY = gy + HEADER_H + (rows.length * CELL_H) / 2;
    parts.push(text(gx + 10, midY, 'camera NAT ↓', `font-style="italic" transform="rotate(-90 ${gx + 10} ${midY})"`));
    rows.forEach((camera, r) => {
      const y = gy + HEADER_H + r * CELL_H;
      parts.push(text(gx + LABEL_W - 8, y + CELL_H / 2 + 4, camera, 'text-anchor="end" font-weight="bold"'));
      cols.forEach((app, j) => {
        const x = gx + LABEL_W + j * CELL_W;
        const c = cells.get(`${camera}|${app}`);
        parts.push(c ? svgCell(c, x, y) : `<rect class="empty" x="${x}" y="${y}" width="${CELL_W}" height="${CELL_H}" fill="#f2f2f2" stroke="#fff" stroke-width="2"/>`);
      });
    });
    parts.push('</g>');
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** Writes report.json, report.md and report.svg into `dir` (created if missing); returns their paths. */
export function writeReport(dir: string, report: Report): { json: string; md: string; svg: string } {
  mkdirSync(dir, { recursive: true });
  const paths = { json: join(dir, 'report.json'), md: join(dir, 'report.md'), svg: join(dir, 'report.svg') };
  writeFileSync(paths.json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(paths.md, renderMarkdown(report));
  writeFileSync(paths.svg, renderSvg(report.summary));
  return paths;
}
