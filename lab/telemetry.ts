/**
 * Does the service see what the lab saw? After a run, p2pd's own metrics — fed only by the SDKs'
 * keepalives (docs/client.md "Keepalive telemetry") — are set beside the attempts the lab
 * recorded: connected sessions by path, setup times, RTT samples, NAT types (docs/lab.md
 * "Telemetry"). Pure: metrics text in, findings out.
 */
import { natTypeLabel } from '../src/signaling/flow.ts';
import type { Attempt } from './report.ts';

/** The value of one sample line of Prometheus text (`name{labels} value`); 0 when absent. */
export function metricValue(text: string, name: string, labels = ''): number {
  const wanted = labels === '' ? `${name} ` : `${name}{${labels}} `;
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(wanted)) sum += Number(line.slice(wanted.length));
  return sum;
}

export interface TelemetryRow {
  readonly what: string;
  readonly lab: number;
  readonly service: number;
  readonly agree: boolean;
}

/**
 * One row per figure. Sessions and paths must match exactly (each session counts once, from the
 * first connected keepalive); RTT samples must be at least one per connected session; every NAT
 * type the lab saw reported must be counted at least as often (the service also counts reports
 * the lab did not see, e.g. an app's type found after the lab read it).
 */
export function compareTelemetry(metrics: string, attempts: readonly Attempt[]): TelemetryRow[] {
  const ok = attempts.filter((a) => a.ok);
  const rows: TelemetryRow[] = [];
  const row = (what: string, lab: number, service: number, agree: boolean): void => { rows.push({ what, lab, service, agree }); };
  for (const path of ['direct', 'relay'] as const) {
    const lab = ok.filter((a) => a.path === path).length;
    const service = metricValue(metrics, 'p2p_connections_total', `path="${path}"`);
    row(`p2p_connections_total{path="${path}"}`, lab, service, lab === service);
  }
  const setups = metricValue(metrics, 'p2p_setup_seconds_count');
  row('p2p_setup_seconds_count', ok.length, setups, setups === ok.length);
  const rtts = metricValue(metrics, 'p2p_latency_seconds_count');
  row('p2p_latency_seconds_count (≥ one per session)', ok.length, rtts, rtts >= ok.length);
  const seen = new Map<string, number>();
  for (const a of ok) {
    for (const t of [a.natType?.camera, a.natType?.app]) if (t !== undefined && t !== 'unknown') seen.set(natTypeLabel(t), (seen.get(natTypeLabel(t)) ?? 0) + 1);
  }
  for (const [type, lab] of [...seen].sort()) {
    const service = metricValue(metrics, 'nat_type_total', `type="${type}"`);
    row(`nat_type_total{type="${type}"} (≥ the lab's)`, lab, service, service >= lab);
  }
  return rows;
}

export function renderTelemetry(rows: readonly TelemetryRow[]): string {
  const lines = ['| figure | the lab saw | p2pd counted | agree |', '|---|---|---|---|'];
  for (const r of rows) lines.push(`| \`${r.what}\` | ${r.lab} | ${r.service} | ${r.agree ? 'yes' : '**no**'} |`);
  return lines.join('\n');
}
