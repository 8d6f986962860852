/**
 * The lab's delay and loss stage (docs/lab.md "Delay and loss"): the kernel has no netem qdisc, so
 * iptables in the router namespace drops `lossPct` % of a link's IPv4 packets (the `statistic`
 * match) and hands the rest to an NFQUEUE where `delayq` (lab/native/delayq.c) releases each one
 * `delayMs` after it came. Both rules sit in the `mangle` table, POSTROUTING `-o dev` for egress
 * (PREROUTING `-i dev` for ingress), so forwarded packets and the router's own (ICMP errors,
 * NATed replies) are shaped alike; loss comes first, so a dropped packet never takes queue room.
 *
 * NFQUEUE numbers belong to a network namespace: each shaped (namespace, device, direction) needs
 * a number of its own within its namespace.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labSupported } from './sites.ts';

export interface LinkShaping {
  /** One-way delay added to every packet, 0..1000 ms (whole milliseconds). 0: no queue at all. */
  delayMs: number;
  /** Percentage of packets dropped at random, 0..100. */
  lossPct: number;
  /** Only the packets these iptables matches select (e.g. `-p tcp --dport 443`); default every one. */
  only?: readonly string[];
  /**
   * Hold every packet (up to HOLD_MAX_MS) until `release()`, instead of `delayMs`: for a test's
   * path that must come up only after another one, however loaded the machine.
   */
  hold?: boolean;
}

/** The longest a held packet waits for `release()` (delayq's own limit). */
export const HOLD_MAX_MS = 10_000;

/** The kernel's and the rules' counters for one shaper (read on demand; all since it started). */
export interface ShaperStats {
  /** Packets the loss rule dropped. */
  lost: number;
  /** Packets the queue rule sent to delayq. */
  queued: number;
  /** Packets held by delayq right now. */
  held: number;
  /** Packets the kernel dropped because the queue was full or delayq could not be told (should be 0). */
  overflowed: number;
  /** False once delayq has exited (every queued packet is then dropped). */
  running: boolean;
}

/** delayq's own account of a run, printed as it exits. */
export interface DelayqReport {
  queue: number;
  delayMs: number;
  received: number;
  accepted: number;
  /** The most packets held at once. */
  maxHeld: number;
  /** Times its netlink socket overflowed (the kernel counts the packets in `overflowed`). */
  receiveOverruns: number;
  stillHeld: number;
  /** Whether it ran SCHED_FIFO (ahead of the machine's ordinary load). */
  realtime: boolean;
  /** How late its verdicts were against arrival + delay, in µs (arrival = when it read the packet). */
  lateUs: { p50: number; p99: number; p999: number; max: number };
}

export interface Shaper {
  stats(): ShaperStats;
  /** Removes the rules, then stops delayq. Idempotent. */
  stop(): void;
  /** From now on nothing is delayed, and what is held leaves at once (delayq's SIGUSR1). */
  release(): void;
  /** Once stopped: each delayq's report (none when delayMs is 0, or when it died without one). */
  readonly reports: Promise<DelayqReport[]>;
}

export interface LinkEnd {
  ns: string;
  dev: string;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE = join(root, 'lab/native/delayq.c');
/** Nobody else writes this name in .build/ (shared by the worktrees). */
export const DELAYQ = join(root, '.build/delayq');
/** Packets the queue may hold: 1,000 ms at 8 kpps, four times the lab's busiest link. */
const MAXLEN = 8192;

const sh = (args: string[]): string => execFileSync(args[0] as string, args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const nsExec = (ns: string, args: string[]): string => sh(['ip', 'netns', 'exec', ns, ...args]);

/** Compiles delayq into .build/ when it is missing or older than its source; returns its path. */
export function buildDelayq(): string {
  if (existsSync(DELAYQ) && statSync(DELAYQ).mtimeMs >= statSync(SOURCE).mtimeMs) return DELAYQ;
  try {
    sh(['cc', '--version']);
  } catch {
    throw new Error('the delay stage needs a C compiler to build lab/native/delayq.c (Debian: apt-get install gcc)');
  }
  mkdirSync(dirname(DELAYQ), { recursive: true });
  const tmp = `${DELAYQ}.${process.pid}.tmp`;
  try {
    execFileSync('cc', ['-O2', '-Wall', '-o', tmp, SOURCE, '-lnetfilter_queue'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    rmSync(tmp, { force: true });
    const out = String((err as { stderr?: unknown }).stderr ?? err);
    if (/libnetfilter_queue/.test(out) || /-lnetfilter_queue/.test(out)) {
      throw new Error('the delay stage needs libnetfilter_queue (Debian: apt-get install libnetfilter-queue-dev, or scripts/install-deps.sh)');
    }
    throw new Error(`cc failed on lab/native/delayq.c:\n${out}`);
  }
  renameSync(tmp, DELAYQ);
  return DELAYQ;
}

/** Why the delay stage cannot run here, or undefined when it can (builds delayq as a side effect). */
export function delaySupported(): string | undefined {
  const why = labSupported();
  if (why) return why;
  try {
    buildDelayq();
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

function check(shaping: LinkShaping, queueNum: number): void {
  const { delayMs, lossPct } = shaping;
  if (!Number.isInteger(delayMs) || delayMs < 0 || delayMs > 1000) throw new RangeError(`delayMs must be a whole number of ms in 0..1000, not ${delayMs}`);
  if (!(lossPct >= 0 && lossPct <= 100)) throw new RangeError(`lossPct must be in 0..100, not ${lossPct}`);
  if (!Number.isInteger(queueNum) || queueNum < 0 || queueNum > 65535) throw new RangeError(`queueNum must be in 0..65535, not ${queueNum}`);
}

/** Starts delayq in `ns` on `queueNum` and resolves once the queue is bound. */
function startDelayq(ns: string, queueNum: number, delayMs: number): Promise<{ child: ReturnType<typeof spawn>; report: Promise<DelayqReport[]> }> {
  const child = spawn('ip', ['netns', 'exec', ns, buildDelayq(), '--queue', String(queueNum), '--delay-ms', String(delayMs), '--maxlen', String(MAXLEN)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => { out += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`delayq in ${ns} did not bind queue ${queueNum} within 10 s: ${out}`));
    }, 10_000);
    child.stdout.on('data', (d: string) => {
      out += d;
      if (!out.includes('ready\n')) return;
      clearTimeout(timer);
      out = out.replace('ready\n', '');
      const report = new Promise<DelayqReport[]>((done) => {
        const parse = (): void => {
          const line = out.split('\n').reverse().find((l) => l.startsWith('{'));
          try { done(line ? [JSON.parse(line) as DelayqReport] : []); } catch { done([]); }
        };
        if (child.exitCode !== null || child.signalCode !== null) parse();
        else child.once('close', parse);
      });
      resolve({ child, report });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`delayq in ${ns} exited (${code ?? signal}) before binding queue ${queueNum}: ${out}`));
    });
  });
}

/** The packet count of the rule carrying `comment`, from `iptables-save -c`. */
function ruleCount(saved: string, comment: string): number {
  const line = saved.split('\n').find((l) => l.includes(`--comment ${comment}`) || l.includes(`--comment "${comment}"`));
  const m = line?.match(/^\[(\d+):\d+\]/);
  return m ? Number(m[1]) : 0;
}

/** queue_total, queue_dropped + user_dropped of `queueNum` in /proc/net/netfilter/nfnetlink_queue. */
function queueCounters(ns: string, queueNum: number): { held: number; overflowed: number } {
  let text = '';
  try { text = nsExec(ns, ['cat', '/proc/net/netfilter/nfnetlink_queue']); } catch { /* no queue yet */ }
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/).map(Number);
    if (f[0] === queueNum && f.length >= 7) return { held: f[2] ?? 0, overflowed: (f[5] ?? 0) + (f[6] ?? 0) };
  }
  return { held: 0, overflowed: 0 };
}

async function shape(ns: string, dev: string, hook: 'egress' | 'ingress', shaping: LinkShaping, queueNum: number): Promise<Shaper> {
  check(shaping, queueNum);
  const chain = hook === 'egress' ? 'POSTROUTING' : 'PREROUTING';
  const match = [...(hook === 'egress' ? ['-o', dev] : ['-i', dev]), ...(shaping.only ?? [])];
  const tag = `p2pd-delay:${dev}:${hook}:q${queueNum}`;
  const rules: string[][] = [];
  if (shaping.lossPct > 0) {
    rules.push([...match, '-m', 'comment', '--comment', `${tag}:loss`, '-m', 'statistic', '--mode', 'random', '--probability', (shaping.lossPct / 100).toFixed(6), '-j', 'DROP']);
  }
  const delayMs = shaping.hold ? HOLD_MAX_MS : shaping.delayMs;
  const delayq = delayMs > 0 ? await startDelayq(ns, queueNum, delayMs) : undefined;
  if (delayq) rules.push([...match, '-m', 'comment', '--comment', `${tag}:delay`, '-j', 'NFQUEUE', '--queue-num', String(queueNum)]);
  const added: string[][] = [];
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    process.off('exit', stop);
    for (const r of added.reverse()) {
      try { nsExec(ns, ['iptables', '-t', 'mangle', '-D', chain, ...r]); } catch { /* namespace gone */ }
    }
    if (delayq) {
      // Keep the process up until delayq's report is in.
      delayq.child.ref();
      for (const s of [delayq.child.stdout, delayq.child.stderr]) (s as unknown as { ref?: () => void } | null)?.ref?.();
      delayq.child.kill('SIGTERM');
    }
  };
  process.once('exit', stop);
  try {
    for (const r of rules) {
      nsExec(ns, ['iptables', '-t', 'mangle', '-A', chain, ...r]);
      added.push(r);
    }
  } catch (err) {
    stop();
    throw err;
  }
  // Neither delayq nor its pipes keep the lab's process alive; it dies with the lab (PR_SET_PDEATHSIG).
  if (delayq) {
    delayq.child.unref();
    for (const s of [delayq.child.stdout, delayq.child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();
  }
  return {
    stop,
    release: () => { if (!stopped) delayq?.child.kill('SIGUSR1'); },
    reports: delayq ? delayq.report : Promise.resolve([]),
    stats: () => {
      const saved = stopped ? '' : nsExec(ns, ['iptables-save', '-c', '-t', 'mangle']);
      const q = delayq ? queueCounters(ns, queueNum) : { held: 0, overflowed: 0 };
      const c = delayq?.child;
      return {
        lost: ruleCount(saved, `${tag}:loss`),
        queued: ruleCount(saved, `${tag}:delay`),
        ...q,
        running: !c || (c.exitCode === null && c.signalCode === null),
      };
    },
  };
}

/**
 * Delays (and drops `lossPct` % of) every IPv4 packet leaving namespace `ns` through `dev`, forwarded
 * or its own. Shaping each end's egress covers both directions of a link (`shapeLink`).
 */
export function shapeEgress(ns: string, dev: string, shaping: LinkShaping, queueNum: number): Promise<Shaper> {
  return shape(ns, dev, 'egress', shaping, queueNum);
}

/**
 * The same for every IPv4 packet arriving at `ns` on `dev` (mangle PREROUTING): with
 * `shapeEgress` on the same device, one namespace shapes both directions of a link, and the
 * namespace at the link's other end (a NAT router, say) keeps its netfilter untouched.
 */
export function shapeIngress(ns: string, dev: string, shaping: LinkShaping, queueNum: number): Promise<Shaper> {
  return shape(ns, dev, 'ingress', shaping, queueNum);
}

/** Both shapers as one: stopped together, counters summed. */
function both(first: Shaper, second: Shaper): Shaper {
  return {
    stop: () => { first.stop(); second.stop(); },
    release: () => { first.release(); second.release(); },
    reports: Promise.all([first.reports, second.reports]).then(([x, y]) => [...x, ...y]),
    stats: () => {
      const x = first.stats();
      const y = second.stats();
      return { lost: x.lost + y.lost, queued: x.queued + y.queued, held: x.held + y.held, overflowed: x.overflowed + y.overflowed, running: x.running && y.running };
    },
  };
}

async function pair(one: () => Promise<Shaper>, other: () => Promise<Shaper>): Promise<Shaper> {
  const first = await one();
  try {
    return both(first, await other());
  } catch (err) {
    first.stop();
    throw err;
  }
}

/**
 * Both directions of the veth link between `a` and `b`: each end's egress, on `queueNum` in each
 * namespace. Not for an end that NATs (see `shapeLinkAt`).
 */
export function shapeLink(a: LinkEnd, b: LinkEnd, shaping: LinkShaping, queueNum: number): Promise<Shaper> {
  return pair(() => shapeEgress(a.ns, a.dev, shaping, queueNum), () => shapeEgress(b.ns, b.dev, shaping, queueNum));
}

/**
 * Both directions of a link, shaped at one end only: egress on `queueNum`, ingress on `queueNum + 1`.
 * The lab shapes each site's link at the central router this way, so a site's NAT router never
 * holds a packet of a new flow before its NAT rule has run (docs/lab.md "Delay and loss").
 */
export function shapeLinkAt(end: LinkEnd, shaping: LinkShaping, queueNum: number): Promise<Shaper> {
  return pair(() => shapeEgress(end.ns, end.dev, shaping, queueNum), () => shapeIngress(end.ns, end.dev, shaping, queueNum + 1));
}
