/**
 * `npm run lab -- delay`: measures the delay stage (lab/delay.ts, docs/lab.md "Delay and loss").
 * Two namespaces joined through a router namespace; the router's egress toward B is shaped and
 * UDP probes (1,200-byte payloads carrying their send time) go from A to B:
 *
 *   A (10.77.1.2) ── router (10.77.1.1 | 10.77.2.1, egress toward B shaped) ── B (10.77.2.2)
 *
 * Every run first measures the unshaped path at the same rate (the probes' own latency: two Node
 * event loops and the stack), and reports the shaped one-way delay minus that baseline's P50.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { delaySupported, shapeEgress, type DelayqReport, type LinkShaping, type Shaper } from './delay.ts';

const PROBE = fileURLToPath(new URL('./delayProbe.ts', import.meta.url));
const PORT = 40_000;
const PAYLOAD = 1200;

const sh = (args: string[]): string => execFileSync(args[0] as string, args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

export interface DelayTopology {
  readonly a: string;
  readonly router: string;
  readonly b: string;
  /** The router's device toward B: shape its egress to delay A → B (its ingress for B → A). */
  readonly routerToB: string;
  readonly aIp: string;
  readonly bIp: string;
  destroy(): void;
}

let made = 0;

/** Builds A ── router ── B (namespaces and veths prefixed `dly`); destroy() removes them, as does process exit. */
export function createDelayTopology(): DelayTopology {
  const id = `dly${process.pid}${made++ % 10}`;
  const [a, router, b] = [`${id}a`, `${id}r`, `${id}b`];
  let destroyed = false;
  const destroy = (): void => {
    if (destroyed) return;
    destroyed = true;
    process.off('exit', destroy);
    for (const ns of [a, router, b]) {
      try { sh(['ip', 'netns', 'del', ns]); } catch { /* absent */ }
    }
  };
  process.once('exit', destroy);
  try {
    for (const ns of [a, router, b]) sh(['ip', 'netns', 'add', ns]);
    sh(['ip', 'link', 'add', `${id}a0`, 'netns', a, 'type', 'veth', 'peer', 'name', `${id}a1`, 'netns', router]);
    sh(['ip', 'link', 'add', `${id}b0`, 'netns', b, 'type', 'veth', 'peer', 'name', `${id}b1`, 'netns', router]);
    const inNs = (ns: string, args: string[]): string => sh(['ip', 'netns', 'exec', ns, ...args]);
    inNs(a, ['ip', 'addr', 'add', '10.77.1.2/24', 'dev', `${id}a0`]);
    inNs(router, ['ip', 'addr', 'add', '10.77.1.1/24', 'dev', `${id}a1`]);
    inNs(router, ['ip', 'addr', 'add', '10.77.2.1/24', 'dev', `${id}b1`]);
    inNs(b, ['ip', 'addr', 'add', '10.77.2.2/24', 'dev', `${id}b0`]);
    for (const [ns, dev] of [[a, `${id}a0`], [router, `${id}a1`], [router, `${id}b1`], [b, `${id}b0`]] as const) {
      inNs(ns, ['ip', 'link', 'set', dev, 'up']);
      inNs(ns, ['ip', 'link', 'set', 'lo', 'up']);
    }
    inNs(a, ['ip', 'route', 'add', 'default', 'via', '10.77.1.1']);
    inNs(b, ['ip', 'route', 'add', 'default', 'via', '10.77.2.1']);
    inNs(router, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
  } catch (err) {
    destroy();
    throw err;
  }
  return { a, router, b, routerToB: `${id}b1`, aIp: '10.77.1.2', bIp: '10.77.2.2', destroy };
}

export interface ProbeRun {
  sent: number;
  received: number;
  /** One-way delay of each probe received, in ms, in arrival order. */
  oneWayMs: number[];
  /** Probes that arrived after one with a higher sequence number. */
  reordered: number;
  /** Dropped by the loss rule / by a full queue (the shaper's counters). */
  lost: number;
  overflowed: number;
  /** Dropped by B's full receive buffer (the probe's fault, not the stage's). */
  rcvbufErrors: number;
  /** Sent but neither received nor counted as dropped anywhere when the run ended. */
  missing: number;
}

const udpRcvbufErrors = (ns: string): number => {
  const lines = sh(['ip', 'netns', 'exec', ns, 'cat', '/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Udp:'));
  const names = (lines[0] ?? '').split(/\s+/);
  const values = (lines[1] ?? '').split(/\s+/);
  return Number(values[names.indexOf('RcvbufErrors')] ?? 0);
};

const exited = (c: ChildProcess): Promise<void> => new Promise((resolve) => {
  if (c.exitCode !== null || c.signalCode !== null) resolve();
  else c.once('exit', () => resolve());
});

export interface ProbeOptions {
  rate: number;
  count: number;
  /** Counts its drops, so the run need not wait for probes it dropped. */
  shaper?: Shaper;
  /** B → A instead of A → B. */
  reverse?: boolean;
  /** How long to wait for unaccounted probes once the sender is done. */
  settleMs?: number;
}

/**
 * Sends `count` probes from A to B (B to A: `reverse`) at `rate` per second and collects them.
 * The run ends when every probe is accounted for (received, or counted dropped by the shaper or by
 * the receiver's full buffer), or `settleMs` after the sender finished.
 */
export async function runProbes(top: DelayTopology, opts: ProbeOptions): Promise<ProbeRun> {
  const { rate, count, shaper, settleMs = 20_000 } = opts;
  const [from, to, toIp] = opts.reverse ? [top.b, top.a, top.aIp] : [top.a, top.b, top.bIp];
  const rcvbufBefore = udpRcvbufErrors(to);
  const receiver = spawn('ip', ['netns', 'exec', to, process.execPath, PROBE, 'recv', String(PORT)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let sender: ChildProcess | undefined;
  try {
    const oneWayMs: number[] = [];
    let reordered = 0;
    let maxSeq = -1;
    let buf = '';
    let ready = false;
    let errText = '';
    let wake: (() => void) | undefined;
    receiver.stderr?.on('data', (d: Buffer) => { errText += d.toString(); });
    receiver.stdout?.setEncoding('utf8');
    receiver.stdout?.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line === 'ready') { ready = true; continue; }
        const [seq, sentNs, recvNs] = line.split(' ');
        if (seq === undefined || sentNs === undefined || recvNs === undefined) continue;
        oneWayMs.push(Number(BigInt(recvNs) - BigInt(sentNs)) / 1e6);
        if (Number(seq) < maxSeq) reordered++;
        else maxSeq = Number(seq);
      }
      wake?.();
    });
    receiver.once('exit', () => wake?.());
    const until = async (cond: () => boolean, ms: number): Promise<boolean> => {
      const deadline = Date.now() + ms;
      while (!cond()) {
        if (Date.now() > deadline || receiver.exitCode !== null) return cond();
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 100);
        });
      }
      return true;
    };
    if (!(await until(() => ready, 20_000))) throw new Error(`the probe receiver in ${to} did not start: ${errText}`);

    // One CPU, so the probes cannot pass each other in two CPUs' backlogs before the stage sees them.
    sender = spawn('ip', ['netns', 'exec', from, 'taskset', '-c', '0', process.execPath, PROBE, 'send', toIp, String(PORT), String(rate), String(count), String(PAYLOAD)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let senderOut = '';
    sender.stdout?.on('data', (d: Buffer) => { senderOut += d.toString(); });
    sender.stderr?.on('data', (d: Buffer) => { senderOut += d.toString(); });
    await exited(sender);
    let sent: number;
    try {
      sent = (JSON.parse(senderOut.trim().split('\n').pop() ?? '') as { sent: number }).sent;
    } catch {
      throw new Error(`the probe sender in ${from} failed: ${senderOut}`);
    }

    let counters = { lost: 0, overflowed: 0, rcvbufErrors: 0 };
    const accounted = (): boolean => {
      const s = shaper?.stats();
      counters = { lost: s?.lost ?? 0, overflowed: s?.overflowed ?? 0, rcvbufErrors: udpRcvbufErrors(to) - rcvbufBefore };
      return oneWayMs.length + counters.lost + counters.overflowed + counters.rcvbufErrors >= sent;
    };
    await until(accounted, settleMs);
    receiver.stdin?.end();
    await exited(receiver);
    accounted();
    const received = oneWayMs.length;
    return { sent, received, oneWayMs, reordered, ...counters, missing: Math.max(0, sent - received - counters.lost - counters.overflowed - counters.rcvbufErrors) };
  } finally {
    for (const c of [receiver, sender]) if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}

export interface DelayRow {
  run: string;
  rate: number;
  shaping: LinkShaping;
  sent: number;
  received: number;
  /** Observed loss, % of sent. */
  lossPct: number;
  reordered: number;
  overflowed: number;
  rcvbufErrors: number;
  missing: number;
  /** Baseline rows: raw one-way delay. Shaped rows: one-way delay minus the baseline's P50 at the same rate. */
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** The smallest raw one-way delay: never below the configured delay. */
  minRaw: number;
  /** Shaped rows: delayq's own account (how late its verdicts were). */
  delayq?: DelayqReport;
}

const pct = (sorted: number[], q: number): number => sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;

function row(run: string, rate: number, shaping: LinkShaping, r: ProbeRun, offset: number, delayq?: DelayqReport): DelayRow {
  const s = r.oneWayMs.map((x) => x - offset).sort((x, y) => x - y);
  return {
    run, rate, shaping, sent: r.sent, received: r.received,
    lossPct: r.sent === 0 ? 0 : (100 * (r.sent - r.received)) / r.sent,
    reordered: r.reordered, overflowed: r.overflowed, rcvbufErrors: r.rcvbufErrors, missing: r.missing,
    p50: pct(s, 0.5), p95: pct(s, 0.95), p99: pct(s, 0.99), max: s[s.length - 1] ?? NaN,
    minRaw: (s[0] ?? NaN) + offset,
    delayq,
  };
}

export interface DelayMeasurement {
  delayMs: number;
  rows: DelayRow[];
  /** Shaped P50 within ±2 ms of the configured delay at every rate. */
  precise: boolean;
  /** No shaped probe early, none reordered, no queue overflow, nothing unaccounted. */
  sound: boolean;
}

/** Baseline and `delayMs` at 200 and 2,000 probes/s, then `delayMs` with 2 % loss at 2,000/s; `seconds` per run. */
export async function measureDelay(opts: { seconds?: number; delayMs?: number } = {}): Promise<DelayMeasurement> {
  const seconds = opts.seconds ?? 3;
  const delayMs = opts.delayMs ?? 50;
  const top = createDelayTopology();
  const rows: DelayRow[] = [];
  try {
    const shaped = async (run: string, rate: number, shaping: LinkShaping, baselineP50: number): Promise<DelayRow> => {
      const shaper = await shapeEgress(top.router, top.routerToB, shaping, 1);
      let r: ProbeRun;
      try {
        r = await runProbes(top, { rate, count: rate * seconds, shaper });
      } finally {
        shaper.stop();
      }
      const [report] = await shaper.reports;
      return row(run, rate, shaping, r, baselineP50, report);
    };
    for (const rate of [200, 2000]) {
      const base = await runProbes(top, { rate, count: rate * seconds });
      const baseRow = row('baseline (raw)', rate, { delayMs: 0, lossPct: 0 }, base, 0);
      rows.push(baseRow);
      const shaping = { delayMs, lossPct: 0 };
      rows.push(await shaped(`${delayMs} ms (- baseline)`, rate, shaping, baseRow.p50));
      if (rate === 2000) rows.push(await shaped(`${delayMs} ms, 2 % loss (- b.)`, rate, { delayMs, lossPct: 2 }, baseRow.p50));
    }
  } finally {
    top.destroy();
  }
  const shapedRows = rows.filter((r) => r.shaping.delayMs > 0);
  return {
    delayMs,
    rows,
    precise: shapedRows.every((r) => Math.abs(r.p50 - delayMs) <= 2),
    sound: shapedRows.every((r) => r.minRaw >= delayMs && r.reordered === 0 && r.overflowed === 0 && r.missing === 0),
  };
}

export function formatTable(m: DelayMeasurement): string {
  const f = (x: number): string => (Number.isNaN(x) ? '-' : x.toFixed(2)).padStart(7);
  const lines = [
    `${'run'.padEnd(26)} ${'pps'.padStart(5)} ${'sent'.padStart(6)} ${'recv'.padStart(6)} ${'loss%'.padStart(6)} ${'reord'.padStart(5)} ${'ovfl'.padStart(4)} ${'P50'.padStart(7)} ${'P95'.padStart(7)} ${'P99'.padStart(7)} ${'max'.padStart(7)} ${'min raw'.padStart(7)} ${'late P99'.padStart(8)} ${'late max'.padStart(8)}`,
  ];
  for (const r of m.rows) {
    lines.push(`${r.run.padEnd(26)} ${String(r.rate).padStart(5)} ${String(r.sent).padStart(6)} ${String(r.received).padStart(6)} ${r.lossPct.toFixed(2).padStart(6)} ${String(r.reordered).padStart(5)} ${String(r.overflowed).padStart(4)} ${f(r.p50)} ${f(r.p95)} ${f(r.p99)} ${f(r.max)} ${f(r.minRaw)} ${f(r.delayq ? r.delayq.lateUs.p99 / 1000 : NaN).padStart(8)} ${f(r.delayq ? r.delayq.lateUs.max / 1000 : NaN).padStart(8)}`);
    if (r.rcvbufErrors > 0 || r.missing > 0) lines.push(`  (${r.rcvbufErrors} lost to the receiver's full buffer, ${r.missing} unaccounted)`);
  }
  const rt = m.rows.filter((r) => r.delayq).every((r) => r.delayq?.realtime);
  lines.push(`late: delayq's verdicts after arrival + delay (delayq ran ${rt ? 'SCHED_FIFO' : 'at ordinary priority'})`);
  lines.push(`delays in ms; target ${m.delayMs} ± 2 ms at P50: ${m.precise ? 'met' : 'MISSED'}; none early, none reordered, no overflow: ${m.sound ? 'yes' : 'NO'}`);
  return `${lines.join('\n')}\n`;
}

/** `lab delay [--seconds N] [--delay-ms D]`: prints the table; exit code 1 when the stage was unsound. */
export async function main(argv: string[]): Promise<number> {
  const arg = (name: string): number | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : undefined;
  };
  const why = delaySupported();
  if (why) {
    process.stdout.write(`delay lab skipped: ${why}\n`);
    return 0;
  }
  const m = await measureDelay({ seconds: arg('--seconds'), delayMs: arg('--delay-ms') });
  process.stdout.write(formatTable(m));
  return m.sound ? 0 : 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
